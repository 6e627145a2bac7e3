import type { AppConfig } from "../../lib/env";
import { CodedError, type PushErrorCode } from "../../lib/errors";
import type { Logger } from "../../lib/logger";

/**
 * Expo's push API over plain fetch: gzip bodies, the access token when set, and retries with
 * backoff on 429 and 5xx (Expo's own advice). Tickets and receipts are parsed here; what they
 * mean for our tokens is service.ts's business.
 */

/** Expo's limits: messages per send request, ticket ids per getReceipts request. */
export const SEND_BATCH_SIZE = 100;
export const RECEIPT_BATCH_SIZE = 1_000;

export type ExpoDeps = {
  config: Pick<AppConfig, "EXPO_PUSH_URL" | "EXPO_ACCESS_TOKEN">;
  logger: Logger;
  /** Attempts per request, the first included (default 3: waits of 1 s and 2 s; a job's QStash retries come after). */
  attempts?: number;
  /** The first retry's wait; each next one doubles (default 1 s). Tests make it small. */
  backoffMs?: number;
};

/** What Expo says about one message (a ticket) or one delivery (a receipt). */
export type ExpoResult = { status: "ok"; id?: string } | { status: "error"; message?: string; details?: { error?: string } };

export class PushError extends CodedError {
  readonly code: PushErrorCode;
  constructor(code: PushErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PushError";
    this.code = code;
  }
}

const MAX_RETRY_AFTER_MS = 30_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

/** Retry-After in ms (seconds or an HTTP date), capped; undefined when absent or unreadable. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1_000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

/** POSTs JSON (gzipped) to `<EXPO_PUSH_URL>/<path>` and returns the `data` of the answer. */
export async function expoRequest(deps: ExpoDeps, path: "send" | "getReceipts", body: unknown): Promise<unknown> {
  const attempts = deps.attempts ?? 3;
  const backoffMs = deps.backoffMs ?? 1_000;
  const url = `${deps.config.EXPO_PUSH_URL.replace(/\/+$/, "")}/${path}`;
  const headers: Record<string, string> = {
    accept: "application/json",
    "accept-encoding": "gzip, deflate",
    "content-type": "application/json",
    "content-encoding": "gzip",
  };
  if (deps.config.EXPO_ACCESS_TOKEN) headers.authorization = `Bearer ${deps.config.EXPO_ACCESS_TOKEN}`;
  const compressed = await gzip(JSON.stringify(body));

  let last = "no answer";
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let response: Response | undefined;
    try {
      response = await fetch(url, { method: "POST", headers, body: compressed });
    } catch (error) {
      last = `connection failed (${error instanceof Error ? error.name : "unknown"})`;
    }
    if (response?.ok) {
      const answer = (await response.json().catch(() => undefined)) as { data?: unknown } | undefined;
      if (answer?.data === undefined) throw new PushError("PUSH_UNAVAILABLE", `Expo ${path} answered without data`);
      return answer.data;
    }
    if (response) {
      await response.body?.cancel();
      last = `HTTP ${response.status}`;
      // Only a busy or failing Expo gets better by waiting; a 4xx is our request's fault.
      if (response.status !== 429 && response.status < 500) break;
    }
    if (attempt < attempts) {
      const wait = retryAfterMs(response?.headers.get("retry-after") ?? null) ?? backoffMs * 2 ** (attempt - 1);
      deps.logger.warn("expo request retried", { path, status: response?.status, attempt, waitMs: wait });
      await sleep(wait);
    }
  }
  throw new PushError("PUSH_UNAVAILABLE", `Expo ${path} failed: ${last}`);
}

/** The Expo error of a result, as a catalog code (anything unknown is PUSH_REJECTED). */
export function pushErrorCode(expoError: string | undefined): PushErrorCode {
  switch (expoError) {
    case "DeviceNotRegistered":
      return "PUSH_DEVICE_NOT_REGISTERED";
    case "MessageTooBig":
      return "PUSH_MESSAGE_TOO_BIG";
    case "MessageRateExceeded":
      return "PUSH_RATE_EXCEEDED";
    case "InvalidCredentials":
      return "PUSH_INVALID_CREDENTIALS";
    default:
      return "PUSH_REJECTED";
  }
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
