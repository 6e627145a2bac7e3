import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { resetDatabase, testConfig, testDb } from "../../../test/helpers";
import { knowledgeChunks } from "../../db/schema";
import { createRedis } from "../../lib/redis";
import { createEmbedder } from "../embeddings";
import { loadKnowledge } from "./load";
import { type KnowledgeChunk, parseChunkFile } from "./parse";
import { retrievalQuery, retrieveChunks } from "./retrieve";
import { createLogger } from "../../lib/logger";

const upstreamCount = async () =>
  ((await (await fetch(`${env.TEST_AI_UPSTREAM_URL}/__control/requests`)).json()) as unknown[]).length;

const fileOne = `# Phase 1 — Opening

## Ask about the trip in their photos
tags: travel, questions

Pick one detail from a travel photo and ask what surprised them most about that place.

## Skip the plain hello
tags: openers

A bare hello gives them nothing to answer. Start with something from their profile instead.
`;
const fileFour = `# Phase 4 — Moving to a date

## Propose a concrete coffee date
tags: planning, coffee

Suggest a specific coffee place and two possible days, friday or saturday, so saying yes is easy.
`;

function embedder() {
  const config = testConfig();
  return createEmbedder({
    apiKey: config.OPENAI_API_KEY!,
    baseURL: config.OPENAI_BASE_URL,
    logger: createLogger({ level: "error" }),
    cache: createRedis(config),
  });
}

const shippedFiles = import.meta.glob("./chunks/*.md", { query: "?raw", import: "default", eager: true }) as Record<string, string>;

describe("the shipped knowledge base", () => {
  const shipped = Object.entries(shippedFiles).flatMap(([path, text]) => parseChunkFile(path.split("/").pop()!, text));

  it("has at least 80 chunks spread over the four phases, with unique titles and substantial bodies", () => {
    expect(shipped.length).toBeGreaterThanOrEqual(80);
    for (const phase of [1, 2, 3, 4]) expect(shipped.filter((chunk) => chunk.phase === phase).length, `phase ${phase}`).toBeGreaterThanOrEqual(20);
    expect(new Set(shipped.map((chunk) => chunk.title)).size).toBe(shipped.length);
    for (const chunk of shipped) {
      const words = chunk.content.split(/\s+/).length;
      expect(words, chunk.title).toBeGreaterThanOrEqual(60);
      expect(words, chunk.title).toBeLessThanOrEqual(140);
      expect(chunk.tags.length, chunk.title).toBeGreaterThanOrEqual(2);
    }
  });
});

describe("knowledge base", () => {
  let chunks: KnowledgeChunk[];
  beforeEach(async () => {
    await resetDatabase();
    await fetch(`${env.TEST_AI_UPSTREAM_URL}/__control/reset`, { method: "POST" });
    chunks = [...parseChunkFile("phase-1-opening.md", fileOne), ...parseChunkFile("phase-4-date.md", fileFour)];
  });

  it("parses chunk files, phase from the file name, and refuses malformed ones", () => {
    expect(chunks).toHaveLength(3);
    expect(chunks[0]).toMatchObject({ phase: 1, title: "Ask about the trip in their photos", tags: ["travel", "questions"] });
    expect(chunks[2]?.phase).toBe(4);
    expect(() => parseChunkFile("phase-2-x.md", "# P\n\n## No tags here\n\nbody")).toThrow(/tags/);
    expect(() => parseChunkFile("notes.md", fileOne)).toThrow(/phase/);
  });

  it("loads idempotently: a second run embeds nothing and leaves the same rows", async () => {
    const db = testDb();
    expect(await loadKnowledge(db, embedder(), chunks)).toEqual({ total: 3, embedded: 3, deleted: 0 });
    const first = await db.select().from(knowledgeChunks).orderBy(knowledgeChunks.title);
    const requestsAfterFirst = await upstreamCount();
    expect(await loadKnowledge(db, embedder(), chunks)).toEqual({ total: 3, embedded: 0, deleted: 0 });
    expect(await db.select().from(knowledgeChunks).orderBy(knowledgeChunks.title)).toEqual(first);
    expect(await upstreamCount()).toBe(requestsAfterFirst);

    // An edited chunk is re-embedded; a removed one is deleted.
    const edited = [{ ...chunks[0]!, content: `${chunks[0]!.content} Then share one of your own.` }, chunks[2]!];
    expect(await loadKnowledge(db, embedder(), edited)).toEqual({ total: 2, embedded: 1, deleted: 1 });
    expect(first[0]?.embedding).toHaveLength(1536);
  });

  it("retrieves the nearest chunks of the requested phase", async () => {
    const db = testDb();
    await loadKnowledge(db, embedder(), chunks);
    const query = await embedder().embedQuery("should I suggest a coffee date on friday?");
    const any = await retrieveChunks(db, query, { k: 3 });
    expect(any[0]?.title).toBe("Propose a concrete coffee date");
    expect(any[0]!.similarity).toBeGreaterThan(any[1]!.similarity);

    const phaseOne = await retrieveChunks(db, query, { phase: 1, k: 5 });
    expect(phaseOne.map((chunk) => chunk.phase)).toEqual([1, 1]);
  });

  it("serves the nearest-neighbour search from the HNSW index", async () => {
    const db = testDb();
    await loadKnowledge(db, embedder(), chunks);
    const query = await embedder().embedQuery("coffee");
    const explain = retrievalQuery(db, query, { phase: 4, k: 3 }).toSQL();
    // SET LOCAL inside one batch (one transaction): a three-row table would otherwise be scanned
    // whole, which is right for three rows and says nothing about the plan at production size.
    const [, , plan] = await db.batch([
      db.execute(sql`set local enable_seqscan = off`),
      db.execute(sql`set local enable_bitmapscan = off`),
      db.execute(sql.raw(`explain ${inline(explain.sql, explain.params)}`)),
    ]);
    const text = (plan.rows as Array<Record<string, string>>).map((row) => Object.values(row)[0]).join("\n");
    expect(text).toMatch(/knowledge_chunks_embedding_hnsw_idx/);
  });

  it("caches query embeddings in Redis by text hash", async () => {
    const text = `a question asked twice ${crypto.randomUUID()}`;
    const first = await embedder().embedQuery(text);
    const before = await upstreamCount();
    expect(await embedder().embedQuery(text)).toEqual(first);
    expect(await upstreamCount()).toBe(before);
  });
});

/** Inlines $n parameters for EXPLAIN (test-only; the values are our own). */
function inline(text: string, params: unknown[]): string {
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const value = params[Number(n) - 1];
    return typeof value === "number" ? String(value) : `'${String(value).replaceAll("'", "''")}'`;
  });
}
