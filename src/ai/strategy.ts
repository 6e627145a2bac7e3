import { CodedError } from "../lib/errors";
import { costUsd, models } from "./models";
import type { AiCallKind, GenerateRequest, ModelId, ProviderAdapter, ProviderName, Usage } from "./types";

export type EngineEvent =
  | { type: "delta"; text: string }
  /** Tokens of a failed attempt were already emitted: discard them, a new answer follows. */
  | { type: "restart"; from: ModelId; reason: string }
  | { type: "done"; model: ModelId; provider: ProviderName; text: string; usage: Usage; costUsd: number };

export type AiErrorCode = "AI_CANCELLED" | "AI_BAD_REQUEST" | "AI_UNAVAILABLE" | "AI_INVALID_OUTPUT";

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
  latencyMs: number;
  firstTokenMs: number | null;
  status: AiCallStatus;
  errorCode: string | null;
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
  attemptsPerModel?: number;
  baseBackoffMs?: number;
  /** A Retry-After longer than this moves on to the next model instead of waiting. */
  maxRetryAfterMs?: number;
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  random?(): number;
}

export interface GenerateOptions {
  kind: AiCallKind;
  userId?: string | null;
  signal?: AbortSignal;
  /** This call's model order, when it differs from the engine's (OCR prefers a vision model). */
  order?: ModelId[];
  /** This call's limit per attempt, when it differs from the engine's (OCR reads big images). */
  totalTimeoutMs?: number;
}

type Classified = { code: string; retryable: boolean; fatal: boolean; retryAfterMs?: number; status: AiCallStatus };

class AttemptTimeout extends Error {
  constructor(readonly which: "first_token" | "total") {
    super(`${which} timeout`);
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
  const status = (error as { status?: unknown }).status;
  if (typeof status === "number") {
    if (status === 429) return { code: "UPSTREAM_RATE_LIMITED", retryable: true, fatal: false, retryAfterMs: retryAfterMs(error), status: "failed" };
    if (status === 408 || status === 409 || status >= 500) return { code: `UPSTREAM_${status}`, retryable: true, fatal: false, retryAfterMs: retryAfterMs(error), status: "failed" };
    if (status === 400 || status === 422) return { code: "UPSTREAM_BAD_REQUEST", retryable: false, fatal: true, status: "failed" };
    // 401/403/404: this vendor's key or model is wrong; another vendor may still answer.
    return { code: `UPSTREAM_${status}`, retryable: false, fatal: false, status: "failed" };
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
export async function* generate(deps: EngineDeps, request: GenerateRequest, options: GenerateOptions): AsyncGenerator<EngineEvent> {
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
      const controller = new AbortController();
      const onOuterAbort = () => controller.abort(outer.reason);
      outer.addEventListener("abort", onOuterAbort, { once: true });
      const firstTokenTimer = setTimeout(() => controller.abort(new AttemptTimeout("first_token")), deps.firstTokenTimeoutMs);
      const totalTimer = setTimeout(() => controller.abort(new AttemptTimeout("total")), options.totalTimeoutMs ?? deps.totalTimeoutMs);
      const started = Date.now();
      let firstTokenMs: number | null = null;
      let text = "";
      let usage: Usage = { inputTokens: 0, outputTokens: 0 };
      const record = (status: AiCallStatus, errorCode: string | null) =>
        deps.record({
          userId: options.userId ?? null,
          kind: options.kind,
          provider,
          model: apiModel,
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          costUsd: costUsd(model, usage),
          latencyMs: Date.now() - started,
          firstTokenMs,
          status,
          errorCode,
          fallbackFrom,
        });

      let failure: Classified;
      try {
        for await (const event of adapter.stream(apiModel, request, controller.signal)) {
          if (event.type === "usage") {
            usage = event.usage;
            continue;
          }
          if (firstTokenMs === null) {
            firstTokenMs = Date.now() - started;
            clearTimeout(firstTokenTimer);
          }
          text += event.text;
          yield { type: "delta", text: event.text };
        }
        // Some SDKs end an aborted stream quietly instead of throwing.
        if (controller.signal.aborted) throw controller.signal.reason;
        if (usage.outputTokens === 0 && text) usage = { ...usage, outputTokens: Math.ceil(text.length / 4) };
        await record("succeeded", null);
        yield { type: "done", model, provider, text, usage, costUsd: costUsd(model, usage) };
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
        // A caller that stops iterating early must not leave the upstream request running.
        if (!controller.signal.aborted) controller.abort(new Error("generation closed"));
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
  throw new AiError("AI_UNAVAILABLE", "no AI provider could answer", { cause: lastError });
}

/** The whole answer at once, for callers that do not stream (tips, phase detection). */
export async function complete(deps: EngineDeps, request: GenerateRequest, options: GenerateOptions) {
  for await (const event of generate(deps, request, options)) if (event.type === "done") return event;
  throw new AiError("AI_UNAVAILABLE", "the generation ended without an answer");
}

/**
 * Structured output: JSON that fits `request.jsonSchema`, parsed and validated with zod. An answer
 * that does not validate is an upstream fault, reported as AI_INVALID_OUTPUT with the zod issues.
 */
export async function completeStructured<T>(
  deps: EngineDeps,
  request: GenerateRequest,
  schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: unknown[] } } },
  options: GenerateOptions,
): Promise<{ data: T; done: Extract<EngineEvent, { type: "done" }> }> {
  if (!request.jsonSchema) throw new Error("completeStructured needs request.jsonSchema");
  const done = await complete(deps, request, options);
  let json: unknown;
  try {
    json = JSON.parse(done.text);
  } catch (error) {
    throw new AiError("AI_INVALID_OUTPUT", "the model's answer was not JSON", { cause: error });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new AiError("AI_INVALID_OUTPUT", "the model's answer did not fit the schema", { cause: parsed.error.issues });
  return { data: parsed.data, done };
}
