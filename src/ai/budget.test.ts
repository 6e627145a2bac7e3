import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clerkId, controlRedis, resetDatabase, testConfig, testDb } from "../../test/helpers";
import { aiCalls, users } from "../db/schema";
import { AppError } from "../lib/errors";
import { createRedis } from "../lib/redis";
import { createBudget } from "./budget";
import { createAiCallRecorder } from "./calls";
import { createAdapters } from "./providers";
import { type EngineDeps, generate } from "./strategy";
import { createLogger } from "../lib/logger";

const upstream = (path: string, init?: RequestInit) => fetch(`${env.TEST_AI_UPSTREAM_URL}${path}`, init);

async function newUser(): Promise<string> {
  const [user] = await testDb().insert(users).values({ clerkId: clerkId() }).returning({ id: users.id });
  return user!.id;
}

describe("daily AI budgets", () => {
  // A fictional date per test keeps Redis counters of one test away from the others.
  let today: Date;
  const budgetFor = (limits: { userDailyUsd: number; totalDailyUsd: number }) =>
    createBudget({ redis: createRedis(testConfig(), { retries: 0 }), db: testDb(), limits, logger: createLogger({ level: "error" }), now: () => today });

  beforeEach(async () => {
    await resetDatabase();
    await upstream("/__control/reset", { method: "POST" });
    today = new Date(Date.UTC(2031, 0, 1 + Math.floor(Math.random() * 3000), 12));
  });
  afterEach(() => controlRedis("start"));

  const spend = (userId: string, costUsd: string) =>
    testDb().insert(aiCalls).values({ userId, kind: "suggestions", provider: "openai", model: "gpt-4o", status: "succeeded", costUsd, createdAt: today });

  it("rebuilds missing counters from ai_calls, then counts new calls in Redis", async () => {
    const userId = await newUser();
    await spend(userId, "0.120000");
    const budget = budgetFor({ userDailyUsd: 0.5, totalDailyUsd: 10 });
    expect(await budget.spent(userId)).toEqual({ user: 0.12, total: 0.12 });
    await budget.add(userId, 0.05);
    const after = await budget.spent(userId);
    expect(after.user).toBeCloseTo(0.17, 6);
    expect(after.total).toBeCloseTo(0.17, 6);
  });

  it("blocks a user over budget before any upstream request is made", async () => {
    const userId = await newUser();
    await spend(userId, "0.500000");
    const budget = budgetFor({ userDailyUsd: 0.5, totalDailyUsd: 10 });
    const failure = await budget.assertWithinBudget(userId).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AppError);
    expect(failure).toMatchObject({ code: "AI_BUDGET_EXCEEDED", status: 429 });
    const recorded = (await (await upstream("/__control/requests")).json()) as unknown[];
    expect(recorded).toHaveLength(0);
    // Another user still has budget.
    await expect(budget.assertWithinBudget(await newUser())).resolves.toBeUndefined();
  });

  it("blocks everyone once the service's total is spent", async () => {
    const spender = await newUser();
    await spend(spender, "2.000000");
    const budget = budgetFor({ userDailyUsd: 5, totalDailyUsd: 2 });
    await expect(budget.assertWithinBudget(await newUser())).rejects.toMatchObject({ code: "AI_BUDGET_EXCEEDED" });
  });

  it("asks the budget before every attempt: the retry after a broken stream that used the budget up is refused", async () => {
    const userId = await newUser();
    const budget = budgetFor({ userDailyUsd: 0.00001, totalDailyUsd: 10 });
    await upstream("/__control/faults", { method: "POST", body: JSON.stringify({ vendor: "openai", fault: { cutAfterTokens: 3 } }) });
    const deps: EngineDeps = {
      adapters: createAdapters(testConfig()),
      order: ["gpt-4o", "claude-sonnet"],
      firstTokenTimeoutMs: 2_000,
      totalTimeoutMs: 5_000,
      record: createAiCallRecorder(testDb(), budget),
      assertWithinBudget: (id) => budget.assertWithinBudget(id),
      sleep: async () => {},
    };
    const events: string[] = [];
    const failure = await (async () => {
      for await (const event of generate(deps, { system: "s", messages: [{ role: "user", content: "hi" }], maxTokens: 50 }, { kind: "suggestions", userId })) events.push(event.type);
    })().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AppError);
    expect(failure).toMatchObject({ code: "AI_BUDGET_EXCEEDED" });
    expect(events).toEqual(["delta", "delta", "delta", "restart"]);
    // Neither the retry nor the fallback reached a vendor.
    expect((await (await upstream("/__control/requests")).json()) as unknown[]).toHaveLength(1);
    const [broken] = await testDb().select().from(aiCalls);
    expect(Number(broken?.costUsd)).toBeGreaterThan(0.00001);
    expect((await budget.spent(userId)).user).toBeCloseTo(Number(broken?.costUsd), 6);
  });

  it("counts the cost of every recorded call, and reads Postgres when Redis is down", async () => {
    const userId = await newUser();
    const budget = budgetFor({ userDailyUsd: 1, totalDailyUsd: 10 });
    await budget.spent(userId);
    const deps = {
      adapters: createAdapters(testConfig()),
      order: ["gpt-4o" as const],
      firstTokenTimeoutMs: 2_000,
      totalTimeoutMs: 5_000,
      record: createAiCallRecorder(testDb(), budget),
    };
    let cost = 0;
    for await (const event of generate(deps, { system: "s", messages: [{ role: "user", content: "hi" }], maxTokens: 50 }, { kind: "opener", userId })) {
      if (event.type === "done") cost = event.costUsd;
    }
    expect(cost).toBeGreaterThan(0);
    expect((await budget.spent(userId)).user).toBeCloseTo(cost, 6);

    await controlRedis("stop");
    await spend(userId, "0.300000");
    // Postgres is the truth when Redis is unreachable. (The call above carries the real date,
    // so on this test's fictional day only the 0.30 counts.)
    expect(await budget.spent(userId)).toEqual({ user: 0.3, total: 0.3 });
  });
});
