import { type AiCallErrorCode, type AiErrorCode, CodedError } from "../lib/errors";
import { costUsd, models } from "./models";
import type { AiCallKind, GenerateRequest, ModelId, ProviderAdapter, ProviderName, Usage } from "./types";
import { attemptUsage } from "./usage";

export type EngineEvent<T = string> =
  | { type: "delta"; text: string }
  /** Tokens of a failed attempt were already emitted: discard them, a new answer follows. */
  | { type: "restart"; from: ModelId; reason: AiCallErrorCode }
  /** `output` is the answer as the caller's `parse` made it (the text itself without one). */
  | { type: "done"; model: ModelId; provider: ProviderName; text: string; output: T; usage: Usage; costUsd: number };

export class AiError extends CodedError {
  readonly code: AiErrorCode;
  constructor(code: AiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AiError";
    this.code = code;
  }
}

export type AiCallStatus = "succeeded" | "failed" | "cancelled" | "timeout";

export interface AiCallRecord {
  userId: string | null;
  kind: AiCallKind;
  provider: ProviderName;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** The tokens are our estimate: the vendor's usage never arrived (see usage.ts). */
  usageEstimated: boolean;
  latencyMs: number;
  firstTokenMs: number | null;
  status: AiCallStatus;
  errorCode: AiCallErrorCode | null;
  fallbackFrom: ModelId | null;
}

export interface EngineDeps {
  adapters: Partial<Record<ProviderName, ProviderAdapter>>;
  /** Primary first, then fallbacks. */
  order: ModelId[];
  firstTokenTimeoutMs: number;
  /** Longest one attempt may take, first token to last. */
  totalTimeoutMs: number;
  record(call: AiCallRecord): Promise<void>;
  /** Refuses (429 AI_BUDGET_EXCEEDED) once the day's budget is spent; asked before every attempt. */
  assertWithinBudget?(userId: string | null): Promise<void>;
  attemptsPerModel?: number;
  baseBackoffMs?: number;
  /** A Retry-After longer than this moves on to the next model instead of waiting. */
  maxRetryAfterMs?: number;
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  random?(): number;
}

export interface GenerateOptions<T = string> {
  kind: AiCallKind;
  userId?: string | null;
  signal?: AbortSignal;
  /** This call's model order, when it differs from the engine's (OCR prefers a vision model). */
  order?: ModelId[];
  /** This call's limit per attempt, when it differs from the engine's (OCR reads big images). */
  totalTimeoutMs?: number;
  /**
   * Turns a finished answer into the caller's value, throwing when it does not fit (not JSON, the
   * wrong number of items …). A throw fails that attempt like any transient fault: the next
   * attempt or model answers, after a `restart` when tokens already went out.
   */
  parse?: (text: string) => T;
}

type Classified = { code: AiCallErrorCode; retryable: boolean; fatal: boolean; retryAfterMs?: number; status: AiCallStatus };

class AttemptTimeout extends Error {
  constructor(readonly which: "first_token" | "total") {
    super(`${which} timeout`);
  }
}

/** A complete answer that `parse` refused. */
class InvalidOutput extends Error {
  constructor(cause: unknown) {
    super("the answer did not fit the expected output", { cause });
    this.name = "InvalidOutput";
  }
}

function retryAfterMs(error: unknown): number | undefined {
  const headers = (error as { headers?: unknown }).headers;
  const value =
    headers && typeof (headers as Headers).get === "function"
      ? (headers as Headers).get("retry-after")
      : (headers as Record<string, string> | undefined)?.["retry-after"];
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Which failures are worth another try, which move on to the next vendor, which stop everything. */
export function classifyError(error: unknown, attemptSignal: AbortSignal): Classified {
  const reason = attemptSignal.reason;
  if (attemptSignal.aborted && reason instanceof AttemptTimeout) {
    return { code: reason.which === "first_token" ? "FIRST_TOKEN_TIMEOUT" : "TOTAL_TIMEOUT", retryable: true, fatal: false, status: "timeout" };
  }
  // Models are not deterministic: the same request asked again usually fits.
  if (error instanceof InvalidOutput) return { code: "INVALID_OUTPUT", retryable: true, fatal: false, status: "failed" };
  const status = (error as { status?: unknown }).status;
  if (typeof status === "number") {
    if (status === 429) return { code: "UPSTREAM_RATE_LIMITED", retryable: true, fatal: false, retryAfterMs: retryAfterMs(error), status: "failed" };
    if (status === 408 || status === 409 || status >= 500) return { code: "UPSTREAM_UNAVAILABLE", retryable: true, fatal: false, retryAfterMs: retryAfterMs(error), status: "failed" };
    if (status === 400 || status === 422) return { code: "UPSTREAM_BAD_REQUEST", retryable: false, fatal: true, status: "failed" };
    // 401/403/404: this vendor's key or model is wrong; another vendor may still answer.
    return { code: "UPSTREAM_REFUSED", retryable: false, fatal: false, status: "failed" };
  }
  // No status: the connection broke, the stream was cut, or the answer was not valid JSON.
  return { code: "UPSTREAM_CONNECTION", retryable: true, fatal: false, status: "failed" };
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** How one call retries: attempts per model, backoff, the longest Retry-After worth waiting for. */
function retryPolicy(deps: EngineDeps) {
  return {
    attempts: deps.attemptsPerModel ?? 2,
    baseBackoffMs: deps.baseBackoffMs ?? 250,
    maxRetryAfterMs: deps.maxRetryAfterMs ?? 5_000,
    sleep: deps.sleep ?? defaultSleep,
    random: deps.random ?? Math.random,
  };
}

/** One call of `generate`: what its attempts share, and the last failure (the final error's cause). */
type Call<T> = {
  deps: EngineDeps;
  request: GenerateRequest;
  options: GenerateOptions<T>;
  outer: AbortSignal;
  policy: ReturnType<typeof retryPolicy>;
  lastError: unknown;
};

/** A model to try, and the one tried before it (`fallback_from`). */
type Candidate = { model: ModelId; fallbackFrom: ModelId | null };

/** What an attempt saw so far: the record and the restart decision are made from it. */
type Progress = { started: number; firstTokenMs: number | null; text: string; chunks: number; reported: Partial<Usage>; finished: boolean; recorded: boolean };

type AttemptResult = { answered: true } | { answered: false; failure: Classified; streamed: boolean };

/** The models to try, in order — those whose vendor is configured — each with the one before it. */
function candidates(deps: EngineDeps, options: GenerateOptions<unknown>): Candidate[] {
  const available = (options.order ?? deps.order).filter((model) => deps.adapters[models[model].provider]);
  return available.map((model, index) => ({ model, fallbackFrom: index > 0 ? available[index - 1]! : null }));
}

/**
 * Streams one generation: the primary model first, retries with exponential backoff and jitter
 * (honouring Retry-After) on transient failures, then the next model. Every attempt is recorded.
 * A failure after tokens went out yields `restart`, so a caller never shows two answers mixed.
 */
export async function* generate<T = string>(deps: EngineDeps, request: GenerateRequest, options: GenerateOptions<T>): AsyncGenerator<EngineEvent<T>> {
  const call: Call<T> = { deps, request, options, outer: options.signal ?? new AbortController().signal, policy: retryPolicy(deps), lastError: undefined };
  for (const candidate of candidates(deps, options)) {
    if (yield* tryModel(call, candidate)) return;
  }
  if (call.lastError instanceof InvalidOutput) throw new AiError("AI_INVALID_OUTPUT", "no answer fitted the expected output", { cause: call.lastError.cause });
  throw new AiError("AI_UNAVAILABLE", "no AI provider could answer", { cause: call.lastError });
}

/**
 * Per model: attempts until one answers (true), backing off between them, or until a failure
 * says to fall back to the next model (false). A failure after deltas went out yields `restart`;
 * a request the vendor refused as such (400) ends the whole call, since no model would take it.
 */
async function* tryModel<T>(call: Call<T>, candidate: Candidate): AsyncGenerator<EngineEvent<T>, boolean> {
  const { deps, options, outer, policy } = call;
  for (let attempt = 0; attempt < policy.attempts; attempt++) {
    if (outer.aborted) throw new AiError("AI_CANCELLED", "generation cancelled");
    // Every attempt spends, retries and fallbacks included: an earlier one may have used the budget up.
    await deps.assertWithinBudget?.(options.userId ?? null);
    const result = yield* attemptOnce(call, candidate);
    if (result.answered) return true;
    const { failure } = result;
    if (result.streamed) yield { type: "restart", from: candidate.model, reason: failure.code };
    if (failure.fatal) throw new AiError("AI_BAD_REQUEST", `the ${models[candidate.model].provider} API refused the request`, { cause: call.lastError });
    const delay = retryDelay(policy, failure, attempt);
    if (delay === undefined) return false;
    try {
      await policy.sleep(delay, outer);
    } catch {
      throw new AiError("AI_CANCELLED", "generation cancelled");
    }
  }
  return false;
}

/**
 * After a failed attempt: how long to wait before trying the same model again, or undefined to
 * fall back to the next model (not worth a retry, the model's last attempt, or a Retry-After
 * longer than waiting is worth).
 */
function retryDelay(policy: Call<unknown>["policy"], failure: Classified, attempt: number): number | undefined {
  if (!failure.retryable || attempt === policy.attempts - 1) return undefined;
  if (failure.retryAfterMs !== undefined && failure.retryAfterMs > policy.maxRetryAfterMs) return undefined;
  const backoff = policy.baseBackoffMs * 2 ** attempt * (0.5 + policy.random());
  return failure.retryAfterMs ?? backoff;
}

/**
 * One attempt on one model: its deltas go out as they arrive, within the first-token and total
 * timeouts; the finished answer is parsed; the failure, if any, is classified. The attempt is
 * recorded however it ends — answered, failed, timed out, cancelled, or abandoned by its caller.
 */
async function* attemptOnce<T>(call: Call<T>, candidate: Candidate): AsyncGenerator<EngineEvent<T>, AttemptResult> {
  const { deps, request, options, outer } = call;
  const { provider, apiModel } = models[candidate.model];
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(outer.reason);
  outer.addEventListener("abort", onOuterAbort, { once: true });
  const firstTokenTimer = setTimeout(() => controller.abort(new AttemptTimeout("first_token")), deps.firstTokenTimeoutMs);
  const totalTimer = setTimeout(() => controller.abort(new AttemptTimeout("total")), options.totalTimeoutMs ?? deps.totalTimeoutMs);
  const seen: Progress = { started: Date.now(), firstTokenMs: null, text: "", chunks: 0, reported: {}, finished: false, recorded: false };
  try {
    for await (const event of deps.adapters[provider]!.stream(apiModel, request, controller.signal)) {
      if (event.type === "usage") {
        seen.reported = { ...seen.reported, ...event.usage };
        continue;
      }
      if (seen.firstTokenMs === null) {
        seen.firstTokenMs = Date.now() - seen.started;
        clearTimeout(firstTokenTimer);
      }
      seen.text += event.text;
      seen.chunks++;
      yield { type: "delta", text: event.text };
    }
    // Some SDKs end an aborted stream quietly instead of throwing.
    if (controller.signal.aborted) throw controller.signal.reason;
    seen.finished = true;
    let output: T;
    try {
      output = options.parse ? options.parse(seen.text) : (seen.text as T);
    } catch (cause) {
      // Charged like any finished answer (the vendor billed it), then retried.
      throw new InvalidOutput(cause);
    }
    const usage = await recordAttempt(call, candidate, seen, "succeeded", null);
    yield { type: "done", model: candidate.model, provider, text: seen.text, output, usage, costUsd: costUsd(candidate.model, usage) };
    return { answered: true };
  } catch (error) {
    if (outer.aborted) {
      await recordAttempt(call, candidate, seen, "cancelled", "CANCELLED");
      throw new AiError("AI_CANCELLED", "generation cancelled", { cause: error });
    }
    call.lastError = error;
    const failure = classifyError(error, controller.signal);
    await recordAttempt(call, candidate, seen, failure.status, failure.code);
    return { answered: false, failure, streamed: seen.text !== "" };
  } finally {
    clearTimeout(firstTokenTimer);
    clearTimeout(totalTimer);
    outer.removeEventListener("abort", onOuterAbort);
    // A caller that stops iterating early must not leave the upstream request running,
    // nor what it spent so far unrecorded.
    if (!controller.signal.aborted) controller.abort(new Error("generation closed"));
    if (!seen.recorded) await recordAttempt(call, candidate, seen, "cancelled", "CANCELLED");
  }
}

/** Writes the attempt's `ai_calls` row and answers the usage it was charged. */
async function recordAttempt<T>(call: Call<T>, candidate: Candidate, seen: Progress, status: AiCallStatus, errorCode: AiCallErrorCode | null): Promise<Usage> {
  seen.recorded = true;
  const { provider, apiModel } = models[candidate.model];
  const { usage, estimated } = attemptUsage(call.request, {
    reported: seen.reported,
    text: seen.text,
    chunks: seen.chunks,
    finished: seen.finished,
    // What the vendor bills: a finished or started stream, or a request stopped while in flight.
    // A refusal (429, 5xx before any token) costs nothing.
    billed: seen.finished || status === "cancelled" || status === "timeout" || seen.chunks > 0 || seen.reported.inputTokens !== undefined,
  });
  await call.deps.record({
    userId: call.options.userId ?? null,
    kind: call.options.kind,
    provider,
    model: apiModel,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    costUsd: costUsd(candidate.model, usage),
    usageEstimated: estimated,
    latencyMs: Date.now() - seen.started,
    firstTokenMs: seen.firstTokenMs,
    status,
    errorCode,
    fallbackFrom: candidate.fallbackFrom,
  });
  return usage;
}

/** The whole answer at once, for callers that do not stream (tips, phase detection). */
export async function complete<T = string>(deps: EngineDeps, request: GenerateRequest, options: GenerateOptions<T>) {
  for await (const event of generate(deps, request, options)) if (event.type === "done") return event;
  throw new AiError("AI_UNAVAILABLE", "the generation ended without an answer");
}

type OutputSchema<T> = { parse(value: unknown): T };

/** JSON that fits `schema`, or a throw: the `parse` of a structured call. */
export function parseJsonOutput<T>(schema: OutputSchema<T>): (text: string) => T {
  return (text) => schema.parse(JSON.parse(text));
}

/**
 * Structured output: JSON that fits `request.jsonSchema`, parsed and validated with zod. An answer
 * that does not validate is retried like any transient fault; when no attempt fits, the error
 * is AI_INVALID_OUTPUT.
 */
export async function completeStructured<T>(
  deps: EngineDeps,
  request: GenerateRequest,
  schema: OutputSchema<T>,
  options: Omit<GenerateOptions, "parse">,
): Promise<{ data: T; done: Extract<EngineEvent<T>, { type: "done" }> }> {
  if (!request.jsonSchema) throw new Error("completeStructured needs request.jsonSchema");
  const done = await complete(deps, request, { ...options, parse: parseJsonOutput(schema) });
  return { data: done.output, done };
}
