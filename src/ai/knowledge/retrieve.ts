import { and, cosineDistance, eq, isNull, or, sql } from "drizzle-orm";
import { knowledgeChunks } from "../../db/schema";
import type { Database } from "../../lib/db";

export type RetrievedChunk = { id: string; title: string; content: string; phase: number | null; tags: string[]; similarity: number };

/**
 * The k nearest chunks by cosine distance (served by the HNSW index), limited to the given
 * phase and to chunks that apply to every phase.
 */
export function retrievalQuery(db: Database, embedding: number[], options: { phase?: number; k?: number } = {}) {
  const distance = cosineDistance(knowledgeChunks.embedding, embedding);
  const phaseFilter = options.phase ? or(eq(knowledgeChunks.phase, options.phase), isNull(knowledgeChunks.phase)) : undefined;
  return db
    .select({
      id: knowledgeChunks.id,
      title: knowledgeChunks.title,
      content: knowledgeChunks.content,
      phase: knowledgeChunks.phase,
      tags: knowledgeChunks.tags,
      similarity: sql<number>`1 - (${distance})`,
    })
    .from(knowledgeChunks)
    .where(and(sql`${knowledgeChunks.embedding} is not null`, phaseFilter))
    .orderBy(distance)
    .limit(options.k ?? 5);
}

export async function retrieveChunks(db: Database, embedding: number[], options: { phase?: number; k?: number } = {}): Promise<RetrievedChunk[]> {
  const rows = await retrievalQuery(db, embedding, options);
  return rows.map((row) => ({ ...row, similarity: Number(row.similarity) }));
}
