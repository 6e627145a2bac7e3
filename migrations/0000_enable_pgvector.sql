-- Written by hand: drizzle-kit does not emit extensions. Every later migration that
-- declares a vector column or an HNSW index depends on this one.
CREATE EXTENSION IF NOT EXISTS vector;
