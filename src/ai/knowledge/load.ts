import { inArray, sql } from "drizzle-orm";
import { knowledgeChunks } from "../../db/schema";
import type { Database } from "../../lib/db";
import type { Embedder } from "../embeddings";
import { contentHash, type KnowledgeChunk } from "./parse";

/**
 * Upserts the knowledge base by (source, title). A chunk whose hash is unchanged is neither
 * embedded nor written again; chunks that left the files are deleted. Running it twice is a no-op.
 */
export async function loadKnowledge(db: Database, embedder: Pick<Embedder, "embedMany">, chunks: KnowledgeChunk[]) {
  const withHashes = await Promise.all(chunks.map(async (chunk) => ({ ...chunk, hash: await contentHash(chunk) })));
  const existing = await db
    .select({ id: knowledgeChunks.id, source: knowledgeChunks.source, title: knowledgeChunks.title, hash: knowledgeChunks.contentHash })
    .from(knowledgeChunks);
  const known = new Map(existing.map((row) => [`${row.source}\n${row.title}`, row]));
  const changed = withHashes.filter((chunk) => known.get(`${chunk.source}\n${chunk.title}`)?.hash !== chunk.hash);

  const BATCH = 64;
  for (let i = 0; i < changed.length; i += BATCH) {
    const batch = changed.slice(i, i + BATCH);
    const vectors = await embedder.embedMany(batch.map((chunk) => `${chunk.title}\n${chunk.content}`));
    await db
      .insert(knowledgeChunks)
      .values(
        batch.map((chunk, j) => ({
          source: chunk.source,
          title: chunk.title,
          content: chunk.content,
          phase: chunk.phase,
          tags: chunk.tags,
          embedding: vectors[j]!,
          contentHash: chunk.hash,
        })),
      )
      .onConflictDoUpdate({
        target: [knowledgeChunks.source, knowledgeChunks.title],
        set: {
          content: sql`excluded.content`,
          phase: sql`excluded.phase`,
          tags: sql`excluded.tags`,
          embedding: sql`excluded.embedding`,
          contentHash: sql`excluded.content_hash`,
          updatedAt: new Date(),
        },
      });
  }

  const wanted = new Set(withHashes.map((chunk) => `${chunk.source}\n${chunk.title}`));
  const stale = existing.filter((row) => !wanted.has(`${row.source}\n${row.title}`)).map((row) => row.id);
  if (stale.length > 0) await db.delete(knowledgeChunks).where(inArray(knowledgeChunks.id, stale));
  return { total: chunks.length, embedded: changed.length, deleted: stale.length };
}

