import { eq, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { clerkId, resetDatabase, testConfig, testDb } from "../../test/helpers";
import { injectFault, resetUpstream, upstreamRequests } from "../../test/upstream";
import { aiCalls, users } from "../db/schema";
import { createAiEngine } from "./engine";
import { createEmbedder } from "./embeddings";
import { loadKnowledge } from "./knowledge/load";
import { parseChunkFile } from "./knowledge/parse";
import { costUsd, embeddingModel } from "./models";
import { createLogger } from "../lib/logger";

async function newUser(): Promise<string> {
  const [user] = await testDb().insert(users).values({ clerkId: clerkId() }).returning({ id: users.id });
  return user!.id;
}

/** Words no other test embeds, so the Redis embedding cache starts cold for this one. */
const freshText = () => `want to get coffee this week ${crypto.randomUUID()}`;

const spentInPostgres = async (userId: string) =>
  Number((await testDb().select({ sum: sql<string>`coalesce(sum(${aiCalls.costUsd}), 0)` }).from(aiCalls).where(eq(aiCalls.userId, userId)))[0]?.sum);

describe("createAiEngine", () => {
  beforeEach(async () => {
    await resetDatabase();
    await resetUpstream();
  });

  it("orders models from AI_PROVIDER_STRATEGY_PRIMARY and _FALLBACKS", async () => {
    const config = { ...testConfig(), AI_PROVIDER_STRATEGY_PRIMARY: "gemini-flash" as const, AI_PROVIDER_STRATEGY_FALLBACKS: ["gpt-4o" as const, "gemini-flash" as const] };
    const engine = createAiEngine(config, testDb());
    expect(engine.order).toEqual(["gemini-flash", "gpt-4o"]);
    const done = await engine.complete({ system: "s", messages: [{ role: "user", content: "hello" }], maxTokens: 50 }, { kind: "tip" });
    expect(done.model).toBe("gemini-flash");
  });

  it("retrieves coaching notes for a conversation", async () => {
    const config = testConfig();
    const chunks = parseChunkFile(
      "phase-4-date.md",
      "# P4\n\n## Propose a concrete coffee date\ntags: coffee, planning\n\nSuggest a coffee place and a day.\n\n## Confirm the day before\ntags: logistics\n\nSend a short confirmation message.\n",
    );
    await loadKnowledge(testDb(), createEmbedder({ apiKey: config.OPENAI_API_KEY!, baseURL: config.OPENAI_BASE_URL, logger: createLogger({ level: "error" }) }), chunks);
    const notes = await createAiEngine(config, testDb()).retrieve("want to get coffee this week?", { phase: 4, k: 1 });
    expect(notes.map((note) => note.title)).toEqual(["Propose a concrete coffee date"]);
  });

  it("records each query embedding with its cost and counts it in the budget; a cached one is free and writes nothing", async () => {
    const engine = createAiEngine(testConfig(), testDb());
    const userId = await newUser();
    const text = freshText();
    await engine.retrieve(text, { phase: 4, userId });
    const [row] = await testDb().select().from(aiCalls);
    expect(row).toMatchObject({ userId, kind: "embedding", provider: "openai", model: embeddingModel.apiModel, status: "succeeded", usageEstimated: false, outputTokens: 0 });
    expect(row?.inputTokens).toBeGreaterThan(0);
    expect(Number(row?.costUsd)).toBe(costUsd(embeddingModel, { inputTokens: row!.inputTokens, outputTokens: 0 }));
    expect(Number(row?.costUsd)).toBeGreaterThan(0);
    expect((await engine.budget.spent(userId)).user).toBeCloseTo(Number(row?.costUsd), 6);

    await engine.retrieve(text, { phase: 4, userId });
    expect(await testDb().select().from(aiCalls)).toHaveLength(1);
    expect((await upstreamRequests()).filter((request) => request.path === "/v1/embeddings")).toHaveLength(1);
  });

  it("keeps the Redis counters equal to ai_calls, estimated (cancelled) calls and embeddings included", async () => {
    const engine = createAiEngine(testConfig(), testDb());
    const userId = await newUser();
    // The first check builds the counters; every later call is added to them as it is recorded.
    await engine.budget.assertWithinBudget(userId);
    await engine.retrieve(freshText(), { userId });
    await injectFault({ tokenDelayMs: 50 }, { vendor: "openai" });
    const controller = new AbortController();
    let deltas = 0;
    const cancelled = await (async () => {
      for await (const event of engine.generate({ system: "s", messages: [{ role: "user", content: "hello there" }], maxTokens: 50 }, { kind: "suggestions", userId, signal: controller.signal })) {
        if (event.type === "delta" && ++deltas === 2) controller.abort();
      }
    })().catch((error: unknown) => error);
    expect(cancelled).toMatchObject({ code: "AI_CANCELLED" });
    const rows = await testDb().select({ kind: aiCalls.kind, status: aiCalls.status, usageEstimated: aiCalls.usageEstimated }).from(aiCalls);
    expect(rows).toEqual(expect.arrayContaining([{ kind: "embedding", status: "succeeded", usageEstimated: false }, { kind: "suggestions", status: "cancelled", usageEstimated: true }]));
    const fromPostgres = await spentInPostgres(userId);
    expect(fromPostgres).toBeGreaterThan(0);
    expect((await engine.budget.spent(userId)).user).toBeCloseTo(fromPostgres, 6);
  });

  it("asks the budget before a completion and before an embedding, so a spent budget reaches no vendor", async () => {
    const engine = createAiEngine({ ...testConfig(), AI_DAILY_BUDGET_USER_USD: 0.01 }, testDb());
    const userId = await newUser();
    await testDb().insert(aiCalls).values({ userId, kind: "ocr", provider: "gemini", model: "gemini-2.5-flash", status: "succeeded", costUsd: "0.010000" });
    const completion = await engine.complete({ system: "s", messages: [{ role: "user", content: "hello" }], maxTokens: 50 }, { kind: "phase", userId }).catch((error: unknown) => error);
    expect(completion).toMatchObject({ code: "AI_BUDGET_EXCEEDED", status: 429 });
    const embedding = await engine.retrieve(freshText(), { userId }).catch((error: unknown) => error);
    expect(embedding).toMatchObject({ code: "AI_BUDGET_EXCEEDED", status: 429 });
    expect(await upstreamRequests()).toEqual([]);
    expect(await testDb().select().from(aiCalls)).toHaveLength(1);
  });
});
