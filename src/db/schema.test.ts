import { cosineDistance, eq, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { resetDatabase, testDb } from "../../test/helpers";
import { aiCalls, EMBEDDING_DIMENSIONS, knowledgeChunks, tipDeliveries, tips, users } from "./schema";

const SPEC_TABLES = [
  "users",
  "push_tokens",
  "sessions",
  "session_images",
  "messages",
  "suggestion_generations",
  "suggestions",
  "magic_openers",
  "ai_calls",
  "knowledge_chunks",
  "tips",
  "tip_deliveries",
  "job_runs",
  "webhook_events",
];

/** A unit-ish vector in 1536 dimensions with weight on the given axes. */
function embedding(weights: Record<number, number>): number[] {
  const out = new Array<number>(EMBEDDING_DIMENSIONS).fill(0);
  for (const [axis, weight] of Object.entries(weights)) out[Number(axis)] = weight;
  return out;
}

/** drizzle wraps driver errors for single queries; batches reject with the driver error itself. */
function pgCode(error: unknown): string | undefined {
  const err = error as { code?: string; cause?: { code?: string } };
  return err.code ?? err.cause?.code;
}

describe("schema (migrations applied through the Neon HTTP driver)", () => {
  beforeEach(resetDatabase);

  it("has every SPEC §3 table", async () => {
    const result = await testDb().execute<{ table_name: string }>(
      sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
    );
    const present = result.rows.map((row) => row.table_name);
    for (const table of SPEC_TABLES) expect(present, table).toContain(table);
  });

  it("enables pgvector and stores embeddings as vector(1536) behind an HNSW cosine index", async () => {
    const db = testDb();
    const extension = await db.execute<{ extname: string }>(
      sql`select extname from pg_extension where extname = 'vector'`,
    );
    expect(extension.rows).toHaveLength(1);

    const column = await db.execute<{ type: string }>(sql`
      select format_type(a.atttypid, a.atttypmod) as type from pg_attribute a
      where a.attrelid = 'public.knowledge_chunks'::regclass and a.attname = 'embedding'`);
    expect(column.rows[0]?.type).toBe("vector(1536)");

    const index = await db.execute<{ amname: string; opclass: string }>(sql`
      select am.amname, opc.opcname as opclass
      from pg_index i
      join pg_class c on c.oid = i.indexrelid
      join pg_am am on am.oid = c.relam
      join pg_opclass opc on opc.oid = i.indclass[0]
      where i.indrelid = 'public.knowledge_chunks'::regclass and c.relname = 'knowledge_chunks_embedding_hnsw_idx'`);
    expect(index.rows).toEqual([{ amname: "hnsw", opclass: "vector_cosine_ops" }]);
  });

  it("has owner + created_at indexes for the list endpoints", async () => {
    const result = await testDb().execute<{ indexname: string; indexdef: string }>(
      sql`select indexname, indexdef from pg_indexes where schemaname = 'public'`,
    );
    const defs = Object.fromEntries(result.rows.map((row) => [row.indexname, row.indexdef]));
    expect(defs.sessions_user_created_idx).toMatch(/\(user_id, created_at DESC, id DESC\)/);
    expect(defs.magic_openers_user_created_idx).toMatch(/\(user_id, created_at DESC, id DESC\)/);
    expect(defs.ai_calls_user_created_idx).toMatch(/\(user_id, created_at\)/);
  });

  it("orders knowledge chunks by cosine similarity", async () => {
    const db = testDb();
    await db.insert(knowledgeChunks).values([
      { source: "test", title: "far", content: "far", phase: 1, embedding: embedding({ 1: 1 }) },
      { source: "test", title: "near", content: "near", phase: 1, embedding: embedding({ 0: 1, 1: 0.1 }) },
      { source: "test", title: "middle", content: "middle", phase: 2, embedding: embedding({ 0: 1, 1: 1 }) },
      { source: "test", title: "opposite", content: "opposite", phase: 2, embedding: embedding({ 0: -1 }) },
    ]);
    const query = embedding({ 0: 1 });
    const distance = cosineDistance(knowledgeChunks.embedding, query);
    const rows = await db
      .select({ title: knowledgeChunks.title, distance })
      .from(knowledgeChunks)
      .orderBy(distance)
      .limit(10);
    expect(rows.map((row) => row.title)).toEqual(["near", "middle", "far", "opposite"]);
    expect(Number(rows[0]?.distance)).toBeCloseTo(1 - 1 / Math.sqrt(1.01), 5);
    expect(Number(rows[3]?.distance)).toBeCloseTo(2, 5);

    // Filtered by phase, as retrieval will be.
    const phaseTwo = await db
      .select({ title: knowledgeChunks.title })
      .from(knowledgeChunks)
      .where(eq(knowledgeChunks.phase, 2))
      .orderBy(distance);
    expect(phaseTwo.map((row) => row.title)).toEqual(["middle", "opposite"]);

    // The vector comes back as numbers, not text.
    const [stored] = await db.select({ embedding: knowledgeChunks.embedding }).from(knowledgeChunks).limit(1);
    expect(stored?.embedding).toHaveLength(EMBEDDING_DIMENSIONS);
  });

  it("round-trips jsonb, numeric, text[] and timestamptz values", async () => {
    const db = testDb();
    const deletedAt = new Date("2026-01-02T03:04:05.678Z");
    const [user] = await db
      .insert(users)
      .values({ clerkId: "user_roundtrip", preferences: { defaultTone: "playful", suggestionCount: 3 }, deletedAt, deletedBy: "user" })
      .returning();
    expect(user?.id).toMatch(/^[a-z0-9]{20,}$/);
    expect(user?.preferences).toEqual({ defaultTone: "playful", suggestionCount: 3 });
    expect(user?.deletedAt?.toISOString()).toBe(deletedAt.toISOString());
    expect(user?.deletedBy).toBe("user");
    expect(user?.dailyTipsEnabled).toBe(true);

    await db.insert(aiCalls).values({
      userId: user!.id,
      kind: "suggestions",
      provider: "openai",
      model: "gpt-4o",
      costUsd: "0.001234",
      status: "succeeded",
    });
    const [call] = await db.select().from(aiCalls);
    expect(call?.costUsd).toBe("0.001234");

    const [chunk] = await db
      .insert(knowledgeChunks)
      .values({ source: "s", title: "t", content: "c", tags: ["opening", "humour, light"] })
      .returning();
    expect(chunk?.tags).toEqual(["opening", "humour, light"]);
  });

  it("rejects duplicates where idempotency depends on it", async () => {
    const db = testDb();
    const [user] = await db.insert(users).values({ clerkId: "user_dup" }).returning();
    const duplicateUser = await db
      .insert(users)
      .values({ clerkId: "user_dup" })
      .then(() => undefined, (error: unknown) => error);
    expect(pgCode(duplicateUser)).toBe("23505");

    const [tip] = await db.insert(tips).values({ text: "Ask an open question." }).returning();
    await db.insert(tipDeliveries).values({ userId: user!.id, tipId: tip!.id, localDate: "2026-11-23" });
    const secondSameDay = await db
      .insert(tipDeliveries)
      .values({ userId: user!.id, tipId: tip!.id, localDate: "2026-11-23" })
      .then(() => undefined, (error: unknown) => error);
    expect(pgCode(secondSameDay)).toBe("23505");
    await db.insert(tipDeliveries).values({ userId: user!.id, tipId: tip!.id, localDate: "2026-11-24" });
  });

  it("commits a neon-http batch as one unit", async () => {
    const db = testDb();
    await db.batch([
      db.insert(users).values({ clerkId: "batch_a" }),
      db.insert(users).values({ clerkId: "batch_b" }),
    ]);
    const rows = await db.select({ clerkId: users.clerkId }).from(users).orderBy(users.clerkId);
    expect(rows.map((row) => row.clerkId)).toEqual(["batch_a", "batch_b"]);
  });

  it("rolls a neon-http batch back entirely when one statement fails", async () => {
    const db = testDb();
    await db.insert(users).values({ clerkId: "existing" });
    const failure = await db
      .batch([
        db.insert(users).values({ clerkId: "would_be_new" }),
        db.update(users).set({ firstName: "Changed" }).where(eq(users.clerkId, "existing")),
        db.insert(users).values({ clerkId: "existing" }),
      ])
      .then(() => undefined, (error: unknown) => error);
    expect(pgCode(failure)).toBe("23505");

    const rows = await db.select({ clerkId: users.clerkId, firstName: users.firstName }).from(users);
    expect(rows).toEqual([{ clerkId: "existing", firstName: null }]);
  });
});
