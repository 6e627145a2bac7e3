import { env } from "cloudflare:test";
import { asc } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { resetDatabase, testConfig, testDb } from "../../test/helpers";
import { aiCalls } from "../db/schema";
import { createAiCallRecorder } from "./calls";
import { costUsd, modelIds, models } from "./models";
import { outputJsonSchema } from "./prompts/data";
import { type PhaseOutput, phaseOutputSchema } from "./prompts/phase.v2";
import { createAdapters } from "./providers";
import { z } from "zod";
import { AiError, completeStructured, type EngineDeps, type EngineEvent, generate } from "./strategy";
import type { GenerateRequest } from "./types";
import { estimateInputTokens } from "./usage";

type Fault = Record<string, unknown>;
const upstream = (path: string, init?: RequestInit) => fetch(`${env.TEST_AI_UPSTREAM_URL}${path}`, init);
const fault = (vendor: string, spec: Fault) =>
  upstream("/__control/faults", { method: "POST", body: JSON.stringify({ vendor, fault: spec }) });
const upstreamRequests = async () =>
  (await (await upstream("/__control/requests")).json()) as Array<{ vendor: string; aborted: boolean; completed: boolean }>;

const request: GenerateRequest = {
  system: "Suggest one reply.",
  messages: [{ role: "user", content: "They said: 'Guess what I cooked tonight?'" }],
  maxTokens: 200,
};

function engine(overrides: Partial<EngineDeps> = {}) {
  const waits: number[] = [];
  const deps: EngineDeps = {
    adapters: createAdapters(testConfig()),
    order: ["gpt-4o", "claude-sonnet", "gemini-flash"],
    firstTokenTimeoutMs: 2_000,
    totalTimeoutMs: 5_000,
    record: createAiCallRecorder(testDb()),
    baseBackoffMs: 10,
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...overrides,
  };
  return { deps, waits };
}

async function run(deps: EngineDeps, options: { signal?: AbortSignal; onDelta?: (count: number) => void } = {}) {
  const events: EngineEvent[] = [];
  let deltas = 0;
  for await (const event of generate(deps, request, { kind: "suggestions", userId: null, signal: options.signal })) {
    events.push(event);
    if (event.type === "delta") options.onDelta?.(++deltas);
  }
  return events;
}

const calls = () =>
  testDb()
    .select({ model: aiCalls.model, status: aiCalls.status, errorCode: aiCalls.errorCode, fallbackFrom: aiCalls.fallbackFrom })
    .from(aiCalls)
    .orderBy(asc(aiCalls.createdAt));

/** The text a client shows: what came after the last restart. */
function shown(events: EngineEvent[]): string {
  const lastRestart = events.map((event) => event.type).lastIndexOf("restart");
  return events
    .slice(lastRestart + 1)
    .filter((event): event is Extract<EngineEvent, { type: "delta" }> => event.type === "delta")
    .map((event) => event.text)
    .join("");
}

describe("AI strategy against the local upstream", () => {
  beforeEach(async () => {
    await resetDatabase();
    await upstream("/__control/reset", { method: "POST" });
  });

  it("streams from the primary and records tokens, cost, latency and first-token time", async () => {
    const events = await run(engine().deps);
    const done = events.at(-1);
    expect(done?.type).toBe("done");
    if (done?.type !== "done") return;
    expect(done.model).toBe("gpt-4o");
    expect(shown(events)).toBe(done.text);
    expect(done.costUsd).toBe(costUsd("gpt-4o", done.usage));
    const [row] = await testDb().select().from(aiCalls);
    expect(row).toMatchObject({ provider: "openai", model: models["gpt-4o"].apiModel, status: "succeeded", kind: "suggestions", fallbackFrom: null });
    expect(row?.outputTokens).toBe(done.usage.outputTokens);
    expect(Number(row?.costUsd)).toBeCloseTo(done.costUsd, 6);
    expect(row?.firstTokenMs).not.toBeNull();
    expect(row?.latencyMs).toBeGreaterThanOrEqual(row?.firstTokenMs ?? 0);
    // The vendor reported this call's usage: nothing in it is our estimate.
    expect(row?.inputTokens).toBe(done.usage.inputTokens);
    expect(row?.usageEstimated).toBe(false);
  });

  it("retries a 429 honouring Retry-After, then falls back to the next provider", async () => {
    await fault("openai", { status: 429, retryAfterSeconds: 1 });
    await fault("openai", { status: 429 });
    const { deps, waits } = engine();
    const events = await run(deps);
    expect(events.at(-1)).toMatchObject({ type: "done", model: "claude-sonnet" });
    expect(waits[0]).toBe(1_000);
    expect(await calls()).toEqual([
      { model: models["gpt-4o"].apiModel, status: "failed", errorCode: "UPSTREAM_RATE_LIMITED", fallbackFrom: null },
      { model: models["gpt-4o"].apiModel, status: "failed", errorCode: "UPSTREAM_RATE_LIMITED", fallbackFrom: null },
      { model: models["claude-sonnet"].apiModel, status: "succeeded", errorCode: null, fallbackFrom: "gpt-4o" },
    ]);
  });

  it("moves on at once when Retry-After is longer than it is worth waiting", async () => {
    await fault("openai", { status: 429, retryAfterSeconds: 60 });
    const { deps, waits } = engine();
    const events = await run(deps);
    expect(events.at(-1)).toMatchObject({ type: "done", model: "claude-sonnet" });
    expect(waits).toEqual([]);
  });

  it("retries a 500 on the same provider with backoff", async () => {
    await fault("openai", { status: 500 });
    const { deps, waits } = engine();
    const events = await run(deps);
    expect(events.at(-1)).toMatchObject({ type: "done", model: "gpt-4o" });
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(5);
    expect((await calls()).map((call) => call.status)).toEqual(["failed", "succeeded"]);
  });

  it("times out a slow first token and falls back", async () => {
    await fault("openai", { firstTokenDelayMs: 1_000 });
    await fault("openai", { firstTokenDelayMs: 1_000 });
    const events = await run(engine({ firstTokenTimeoutMs: 150 }).deps);
    expect(events.at(-1)).toMatchObject({ type: "done", model: "claude-sonnet" });
    expect((await calls()).slice(0, 2)).toEqual([
      { model: models["gpt-4o"].apiModel, status: "timeout", errorCode: "FIRST_TOKEN_TIMEOUT", fallbackFrom: null },
      { model: models["gpt-4o"].apiModel, status: "timeout", errorCode: "FIRST_TOKEN_TIMEOUT", fallbackFrom: null },
    ]);
    expect((await upstreamRequests()).slice(0, 2).every((entry) => entry.aborted)).toBe(true);
  });

  it("times out a stream that runs too long, signals a restart, and never mixes answers", async () => {
    await fault("openai", { tokenDelayMs: 60 });
    const events = await run(engine({ totalTimeoutMs: 300, attemptsPerModel: 1 }).deps);
    const restart = events.findIndex((event) => event.type === "restart");
    expect(restart).toBeGreaterThan(0);
    expect(events[restart]).toMatchObject({ from: "gpt-4o", reason: "TOTAL_TIMEOUT" });
    const done = events.at(-1);
    expect(done).toMatchObject({ type: "done", model: "claude-sonnet" });
    expect(shown(events)).toBe(done?.type === "done" ? done.text : "");
  });

  it("turns a stream cut mid-way into a restart and a clean second answer", async () => {
    await fault("openai", { cutAfterTokens: 3 });
    const events = await run(engine().deps);
    const kinds = events.map((event) => event.type);
    expect(kinds.slice(0, 4)).toEqual(["delta", "delta", "delta", "restart"]);
    const done = events.at(-1);
    expect(done).toMatchObject({ type: "done", model: "gpt-4o" });
    expect(shown(events)).toBe(done?.type === "done" ? done.text : "");
  });

  it("cancels: aborts the upstream request and records a cancelled call", async () => {
    await fault("openai", { tokenDelayMs: 100 });
    const controller = new AbortController();
    const failure = await run(engine().deps, { signal: controller.signal, onDelta: () => controller.abort() }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AiError);
    expect((failure as AiError).code).toBe("AI_CANCELLED");
    expect(await calls()).toEqual([{ model: models["gpt-4o"].apiModel, status: "cancelled", errorCode: "CANCELLED", fallbackFrom: null }]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await upstreamRequests())[0]).toMatchObject({ aborted: true, completed: false });
  });

  it("charges a cancelled call its prompt and the tokens streamed so far, marked as an estimate", async () => {
    await fault("openai", { tokenDelayMs: 50 });
    const controller = new AbortController();
    await run(engine().deps, { signal: controller.signal, onDelta: (count) => count === 3 && controller.abort() }).catch(() => undefined);
    const [row] = await testDb().select().from(aiCalls);
    expect(row).toMatchObject({ status: "cancelled", usageEstimated: true, inputTokens: estimateInputTokens(request) });
    expect(row?.inputTokens).toBeGreaterThan(0);
    // At least the three tokens that reached the caller (the vendor may have sent one more).
    expect(row?.outputTokens).toBeGreaterThanOrEqual(3);
    expect(Number(row?.costUsd)).toBeGreaterThan(0);
    expect(Number(row?.costUsd)).toBe(costUsd("gpt-4o", { inputTokens: row!.inputTokens, outputTokens: row!.outputTokens }));
  });

  it("takes the input count Anthropic reports when the stream starts, even for a cancelled call", async () => {
    const deps = engine({ order: ["claude-sonnet"] }).deps;
    await run(deps);
    const [completed] = await testDb().select().from(aiCalls);
    expect(completed).toMatchObject({ status: "succeeded", usageEstimated: false });
    await resetDatabase();

    await fault("anthropic", { tokenDelayMs: 50 });
    const controller = new AbortController();
    await run(deps, { signal: controller.signal, onDelta: () => controller.abort() }).catch(() => undefined);
    const [cancelled] = await testDb().select().from(aiCalls);
    // The vendor's own figure for this prompt, not our estimate; only the output is estimated.
    expect(cancelled).toMatchObject({ status: "cancelled", usageEstimated: true, inputTokens: completed!.inputTokens });
    expect(cancelled?.outputTokens).toBeGreaterThanOrEqual(1);
  });

  it("charges timed-out and broken attempts, and a refused request nothing", async () => {
    await fault("openai", { status: 429 });
    await fault("openai", { firstTokenDelayMs: 1_000 });
    await fault("anthropic", { cutAfterTokens: 3 });
    const events = await run(engine({ firstTokenTimeoutMs: 150 }).deps);
    expect(events.at(-1)).toMatchObject({ type: "done", model: "claude-sonnet" });
    const rows = await testDb()
      .select({ status: aiCalls.status, errorCode: aiCalls.errorCode, inputTokens: aiCalls.inputTokens, outputTokens: aiCalls.outputTokens, costUsd: aiCalls.costUsd, usageEstimated: aiCalls.usageEstimated })
      .from(aiCalls)
      .orderBy(asc(aiCalls.createdAt));
    expect(rows.map((row) => [row.status, row.errorCode, row.usageEstimated])).toEqual([
      ["failed", "UPSTREAM_RATE_LIMITED", false],
      ["timeout", "FIRST_TOKEN_TIMEOUT", true],
      ["failed", "UPSTREAM_CONNECTION", true],
      ["succeeded", null, false],
    ]);
    const [refused, timedOut, broken] = rows;
    expect(refused).toMatchObject({ inputTokens: 0, outputTokens: 0, costUsd: "0.000000" });
    // The vendor had the prompt when the attempt was given up on, and had produced nothing yet.
    expect(timedOut).toMatchObject({ inputTokens: estimateInputTokens(request), outputTokens: 0 });
    expect(Number(timedOut?.costUsd)).toBeGreaterThan(0);
    expect(broken?.outputTokens).toBeGreaterThanOrEqual(3);
    expect(Number(broken?.costUsd)).toBeGreaterThan(0);
  });

  it("aborts the upstream request when the caller stops reading early", async () => {
    await fault("openai", { tokenDelayMs: 100 });
    for await (const event of generate(engine().deps, request, { kind: "suggestions" })) {
      if (event.type === "delta") break;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await upstreamRequests())[0]).toMatchObject({ aborted: true, completed: false });
    // What it spent until then is on the books like any cancelled call.
    const [row] = await testDb().select().from(aiCalls);
    expect(row).toMatchObject({ status: "cancelled", usageEstimated: true });
    expect(row?.outputTokens).toBeGreaterThanOrEqual(1);
    expect(Number(row?.costUsd)).toBeGreaterThan(0);
  });

  it("fails fast on a 400, without retries or fallback", async () => {
    await fault("openai", { status: 400 });
    const failure = await run(engine().deps).catch((error: unknown) => error);
    expect((failure as AiError).code).toBe("AI_BAD_REQUEST");
    expect(await upstreamRequests()).toHaveLength(1);
  });

  it("skips a provider whose key is refused, and says so when nobody can answer", async () => {
    await fault("openai", { status: 401 });
    const events = await run(engine().deps);
    expect(events.at(-1)).toMatchObject({ type: "done", model: "claude-sonnet" });

    for (const vendor of ["openai", "openai", "anthropic", "anthropic", "gemini", "gemini"]) await fault(vendor, { status: 503 });
    const failure = await run(engine().deps).catch((error: unknown) => error);
    expect((failure as AiError).code).toBe("AI_UNAVAILABLE");
  });
});

describe("structured completions", () => {
  beforeEach(async () => {
    await resetDatabase();
    await upstream("/__control/reset", { method: "POST" });
  });

  const phaseRequest: GenerateRequest = {
    ...request,
    jsonSchema: outputJsonSchema("phase", phaseOutputSchema),
  };
  it.each(modelIds)("%s: parses and validates with zod", async (model) => {
    const { data, done } = await completeStructured(engine({ order: [model] }).deps, phaseRequest, phaseOutputSchema, { kind: "phase" });
    expect(data.phase).toBeGreaterThanOrEqual(1);
    expect(done.model).toBe(model);
  });

  it("retries an answer that does not fit on the next attempt and model, and reports AI_INVALID_OUTPUT when none fits", async () => {
    const strict = z.object({ phase: z.literal(99) });
    const failure = await completeStructured(engine().deps, phaseRequest, strict, { kind: "phase" }).catch((error: unknown) => error);
    expect((failure as AiError).code).toBe("AI_INVALID_OUTPUT");
    // Two attempts on each of the three models, each recorded as a failed call.
    const recorded = await calls();
    expect(recorded.map((call) => call.errorCode)).toEqual(Array(6).fill("INVALID_OUTPUT"));
    expect(new Set(recorded.map((call) => call.model)).size).toBe(3);
  });

  it("streams a second answer after a restart when the first one streamed but did not fit", async () => {
    await fault("openai", { output: '{"phase": 7, "confidence": 0.5}' });
    const events: EngineEvent<PhaseOutput>[] = [];
    for await (const event of generate(engine().deps, phaseRequest, { kind: "phase", parse: (text) => phaseOutputSchema.parse(JSON.parse(text)) })) events.push(event);
    const restart = events.findIndex((event) => event.type === "restart");
    expect(restart).toBeGreaterThan(0);
    expect(events[restart]).toMatchObject({ type: "restart", from: "gpt-4o", reason: "INVALID_OUTPUT" });
    const done = events.at(-1);
    if (done?.type !== "done") throw new Error("no answer");
    expect(done.output.phase).toBeGreaterThanOrEqual(1);
    expect(done.output.phase).toBeLessThanOrEqual(4);
    expect((await calls()).map((call) => call.errorCode)).toEqual(["INVALID_OUTPUT", null]);
  });
});
