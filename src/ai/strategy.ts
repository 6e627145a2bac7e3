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

/**
 * Streams one generation: the primary model first, retries with exponential backoff and jitter
 * (honouring Retry-After) on transient failures, then the next model. Every attempt is recorded.
 * A failure after tokens went out yields `restart`, so a caller never shows two answers mixed.
 */
export async function* generate<T = string>(deps: EngineDeps, request: GenerateRequest, options: GenerateOptions<T>): AsyncGenerator<EngineEvent<T>> {
  const outer = options.signal ?? new AbortController().signal;
  const sleep = deps.sleep ?? defaultSleep;
  const random = deps.random ?? Math.random;
  const attempts = deps.attemptsPerModel ?? 2;
  const baseBackoff = deps.baseBackoffMs ?? 250;
  const maxRetryAfter = deps.maxRetryAfterMs ?? 5_000;
  const available = (options.order ?? deps.order).filter((model) => deps.adapters[models[model].provider]);
  let lastError: unknown;

  for (const [index, model] of available.entries()) {
    const { provider, apiModel } = models[model];
    const adapter = deps.adapters[provider]!;
    const fallbackFrom = index > 0 ? available[index - 1]! : null;

    for (let attempt = 0; attempt < attempts; attempt++) {
      if (outer.aborted) throw new AiError("AI_CANCELLED", "generation cancelled");
      // Every attempt spends, retries and fallbacks included: an earlier one may have used the budget up.
      await deps.assertWithinBudget?.(options.userId ?? null);
      const controller = new AbortController();
      const onOuterAbort = () => controller.abort(outer.reason);
      outer.addEventListener("abort", onOuterAbort, { once: true });
      const firstTokenTimer = setTimeout(() => controller.abort(new AttemptTimeout("first_token")), deps.firstTokenTimeoutMs);
      const totalTimer = setTimeout(() => controller.abort(new AttemptTimeout("total")), options.totalTimeoutMs ?? deps.totalTimeoutMs);
      const started = Date.now();
      let firstTokenMs: number | null = null;
      let text = "";
      let chunks = 0;
      let reported: Partial<Usage> = {};
      let finished = false;
      // What the vendor bills: a finished or started stream, or a request stopped while in flight.
      // A refusal (429, 5xx before any token) costs nothing.
      const charge = (status: AiCallStatus) =>
        attemptUsage(request, { reported, text, chunks, finished, billed: finished || status === "cancelled" || status === "timeout" || chunks > 0 || reported.inputTokens !== undefined });
      let recorded = false;
      const record = async (status: AiCallStatus, errorCode: AiCallErrorCode | null) => {
        recorded = true;
        const { usage, estimated } = charge(status);
        await deps.record({
          userId: options.userId ?? null,
          kind: options.kind,
          provider,
          model: apiModel,
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          costUsd: costUsd(model, usage),
          usageEstimated: estimated,
          latencyMs: Date.now() - started,
          firstTokenMs,
          status,
          errorCode,
          fallbackFrom,
        });
        return usage;
      };

      let failure: Classified;
      try {
        for await (const event of adapter.stream(apiModel, request, controller.signal)) {
          if (event.type === "usage") {
            reported = { ...reported, ...event.usage };
            continue;
          }
          if (firstTokenMs === null) {
            firstTokenMs = Date.now() - started;
            clearTimeout(firstTokenTimer);
          }
          text += event.text;
          chunks++;
          yield { type: "delta", text: event.text };
        }
        // Some SDKs end an aborted stream quietly instead of throwing.
        if (controller.signal.aborted) throw controller.signal.reason;
        finished = true;
        let output: T;
        try {
          output = options.parse ? options.parse(text) : (text as T);
        } catch (cause) {
          // Charged like any finished answer (the vendor billed it), then retried.
          throw new InvalidOutput(cause);
        }
        const usage = await record("succeeded", null);
        yield { type: "done", model, provider, text, output, usage, costUsd: costUsd(model, usage) };
        return;
      } catch (error) {
        if (outer.aborted) {
          await record("cancelled", "CANCELLED");
          throw new AiError("AI_CANCELLED", "generation cancelled", { cause: error });
        }
        lastError = error;
        failure = classifyError(error, controller.signal);
        await record(failure.status, failure.code);
      } finally {
        clearTimeout(firstTokenTimer);
        clearTimeout(totalTimer);
        outer.removeEventListener("abort", onOuterAbort);
        // A caller that stops iterating early must not leave the upstream request running,
        // nor what it spent so far unrecorded.
        if (!controller.signal.aborted) controller.abort(new Error("generation closed"));
        if (!recorded) await record("cancelled", "CANCELLED");
      }

      if (text) yield { type: "restart", from: model, reason: failure.code };
      if (failure.fatal) throw new AiError("AI_BAD_REQUEST", `the ${provider} API refused the request`, { cause: lastError });
      if (!failure.retryable || attempt === attempts - 1) break;
      if (failure.retryAfterMs !== undefined && failure.retryAfterMs > maxRetryAfter) break;
      const backoff = baseBackoff * 2 ** attempt * (0.5 + random());
      try {
        await sleep(failure.retryAfterMs ?? backoff, outer);
      } catch {
        throw new AiError("AI_CANCELLED", "generation cancelled");
      }
    }
  }
  if (lastError instanceof InvalidOutput) throw new AiError("AI_INVALID_OUTPUT", "no answer fitted the expected output", { cause: lastError.cause });
  throw new AiError("AI_UNAVAILABLE", "no AI provider could answer", { cause: lastError });
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
