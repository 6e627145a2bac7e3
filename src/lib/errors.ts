import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * Where a code reaches someone, besides an HTTP error body (`status`) or a socket's close
 * frame (`close`): a socket `error` frame; an `outcome`, the `error_code` stored on a failed
 * session or generation (a failed generation fails its session with the same code) and sent
 * in `status` / `generation.failed` events; an `AiError` a feature handles; `ai_calls.error_code`
 * (one failed model attempt, for operators); `push`, a push notification Expo refused, logged with its
 * code (operators). `job_runs.last_error` holds the code of whatever
 * failed a delivery: any code here.
 */
type Surface = "frame" | "outcome" | "ai" | "ai_call" | "push";

type Entry = {
  /** The message a client gets unless the thrower gives a more precise one. */
  message: string;
  /** One line for the README and the API document: when it happens, what to do. */
  doc: string;
  status?: ContentfulStatusCode;
  /** Seconds a client should wait before trying again (sent as Retry-After). */
  retryAfterSeconds?: number;
  /** WebSocket close code: HTTP-like 4xxx, so clients can tell why without the reason. */
  close?: number;
  on?: readonly Surface[];
};

/**
 * The one error catalog: every code a client or an operator can see, declared once. Clients
 * switch on `code` (HTTP bodies, `error` frames, `error_code` fields) or on the close code.
 */
export const errorCatalog = {
  // ---- HTTP: the request itself ---------------------------------------------------------------
  VALIDATION_ERROR: { status: 400, message: "The request is invalid", doc: "A body, path or query fails its zod schema (`details.issues`)" },
  INVALID_JSON: { status: 400, message: "The request body is not valid JSON", doc: "The body is not JSON" },
  WEBHOOK_SIGNATURE_INVALID: { status: 400, message: "The webhook signature is missing, invalid or stale", doc: "A webhook's signature is missing, wrong or older than 5 minutes" },
  UPLOAD_LENGTH_MISMATCH: { status: 400, message: "The body length differs from the size the upload URL was signed for", doc: "An upload whose `Content-Length` differs from the signed size" },
  UNAUTHORIZED: { status: 401, message: "Authentication required", doc: "No or an invalid bearer token" },
  TOKEN_EXPIRED: { status: 401, close: 4401, message: "The session token has expired", doc: "HTTP: an expired bearer token: refresh it and retry. Socket: the token the socket went live with expired and no fresh `authenticate` came before; reconnect with a fresh token" },
  ACCOUNT_DELETED: { status: 401, close: 4401, message: "This account has been deleted", doc: "HTTP: a valid token of a deleted account: issued before its owner deleted it (sign in again to restore it), or any token once Clerk deleted the user. Socket: the account was deleted while the socket was open" },
  WS_TICKET_INVALID: { status: 401, message: "The socket ticket is invalid, expired or already used", doc: "A WebSocket upgrade whose `?ticket=` is unknown, older than 60 s, already used, or for another room: ask `POST …/ws-ticket` for a new one" },
  JOB_SIGNATURE_INVALID: { status: 401, message: "The job delivery's signature is missing, invalid or stale", doc: "A `/jobs/*` delivery without a valid `Upstash-Signature` for its body and URL" },
  UPLOAD_URL_INVALID: { status: 403, message: "The upload URL is invalid or has expired", doc: "An upload URL that is expired, tampered with or incomplete, or whose account was deleted since: ask for a new one" },
  NOT_FOUND: { status: 404, message: "Not found", doc: "Unknown route, or a resource that is not the caller's (never 403)" },
  SESSION_NOT_FOUND: { status: 404, message: "Session not found", doc: "No such session of the caller's (deleted or someone else's is the same answer)" },
  MESSAGE_NOT_FOUND: { status: 404, message: "Message not found", doc: "No such message in this session" },
  UPLOAD_NOT_FOUND: { status: 404, message: "No finished upload has this key", doc: "An image key with no finished upload of the caller's" },
  SUGGESTION_NOT_FOUND: { status: 404, message: "Suggestion not found", doc: "No such suggestion of the caller's" },
  OPENER_NOT_FOUND: { status: 404, message: "Opener not found", doc: "No such magic opener of the caller's (deleted or someone else's is the same answer)" },
  UPLOAD_ALREADY_EXISTS: { status: 409, message: "Something was already uploaded to this key", doc: "A second PUT to one upload key" },
  UPLOAD_ALREADY_USED: { status: 409, message: "This upload already belongs to a session", doc: "An upload another session already took" },
  INVALID_SESSION_STATE: { status: 409, message: "The session cannot do that in its current state", doc: "The session's status does not allow this (`details.status` says which it is in)" },
  CONVERSATION_EMPTY: { status: 409, message: "The conversation has no messages to reply to", doc: "Generating for a conversation with no message" },
  CONVERSATION_TOO_LONG: { status: 409, message: "A conversation holds at most 200 messages", doc: "A 201st message" },
  LENGTH_REQUIRED: { status: 411, message: "Send the body with a Content-Length", doc: "An upload without `Content-Length` (chunked)" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large", doc: "Body over the route's limit (64 KiB for the JSON API, 512 KiB for webhooks, 1 MiB for jobs, the signed size for uploads)" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "Unsupported content type", doc: "A body that is not `application/json`, or an upload whose type is not the signed one" },
  INVALID_IMAGE: { status: 422, message: "The body is not an image of the signed type", doc: "Upload bytes whose signature (magic bytes) is not the signed image type" },
  SCREENSHOTS_EXPIRED: { status: 410, on: ["outcome"], message: "The screenshots of this session were deleted", doc: "The session's screenshots left storage (the user's `screenshotRetention`, or the session was deleted), so OCR cannot run on them again: `retry` answers it, and an OCR run that finds them gone fails the session with it. `GET /sessions/{id}` shows `available: false` on each" },
  UPGRADE_REQUIRED: { status: 426, message: "This endpoint only accepts WebSocket upgrades", doc: "A plain request to a WebSocket route" },
  TOO_MANY_SOCKETS: { status: 429, close: 4429, message: "Too many open sockets", doc: "The account already holds WS_MAX_SOCKETS_PER_USER (20) open sockets across rooms: HTTP 429 to a header or ticket upgrade, close 4429 after a first-frame `authenticate`; close one first" },
  RATE_LIMITED: { status: 429, message: "Too many requests", doc: "HTTP: with `Retry-After` and `RateLimit-Limit/-Remaining/-Reset`. Socket: more frames per second than allowed; the socket is then closed with TOO_MANY_FRAMES", on: ["frame"] },
  UPLOAD_QUOTA_EXCEEDED: { status: 429, message: "Too many uploads; try again later", doc: "`GET /sessions/upload-url` past UPLOAD_MAX_PENDING uploads not yet in a session (each counts for its first hour) or past UPLOAD_MAX_BYTES_PER_DAY signed in the last 24 hours; `details.exceeded` names the limit(s), `Retry-After` is when enough frees up" },
  AI_BUDGET_EXCEEDED: { status: 429, message: "The daily AI budget is used up", doc: "The user's or the app's AI spend for today is used up, checked before every model call; retry after midnight UTC", on: ["outcome"] },
  INTERNAL_ERROR: { status: 500, message: "An unexpected error occurred", doc: "Anything unexpected; `details.requestId` only", on: ["outcome"] },
  CONFIG_INVALID: { status: 503, message: "The service is misconfigured", doc: "Broken configuration; the Worker's log names the variables (never their values), the response names none" },
  SERVICE_UNAVAILABLE: { status: 503, message: "A dependency is unavailable", doc: "A dependency (Redis, the job queue) is down; with `Retry-After: 2`", retryAfterSeconds: 2 },
  DATABASE_UNAVAILABLE: { status: 503, message: "The database could not be reached; try again shortly", doc: "Postgres could not be reached (the connection failed or was lost, or Neon answered neither 2xx nor 400), with `Retry-After: 2`. A read is retried once first; a write is not. A statement Postgres refuses stays a 500", retryAfterSeconds: 2 },
  JOB_RUN_IN_PROGRESS: { status: 503, message: "Another delivery of this job is still running; deliver again later", doc: "`/jobs/*` only: another delivery of the same job still holds a live lease on its work; QStash delivers it again later (`Retry-After: 10`)", retryAfterSeconds: 10 },

  // ---- WebSocket close codes (the reason is the code) ---------------------------------------
  AUTH_TIMEOUT: { close: 4401, message: "No authenticate frame came in time", doc: "Send `authenticate` within WS_AUTH_TIMEOUT_MS (10 s) of opening" },
  AUTH_REQUIRED: { close: 4401, message: "The first frame must be authenticate", doc: "A client sent another frame before `authenticate`" },
  TOKEN_INVALID: { close: 4401, message: "The token is invalid or expired", doc: "An `authenticate` whose token is invalid or expired, or (on a live socket) belongs to another user: refresh the Clerk token and reconnect" },
  ROOM_NOT_FOUND: { close: 4404, message: "Not found", doc: "The room does not exist, was deleted, or is not yours" },
  ROOM_DELETED: { close: 4404, message: "This conversation was deleted", doc: "The room's session or generation was deleted while the socket was open; its stored events are gone" },
  TOO_MANY_FRAMES: { close: 4429, message: "Too many frames", doc: "The socket kept sending after RATE_LIMITED" },
  ROOM_UNAVAILABLE: { close: 1011, message: "Try again", doc: "The room could not check ownership (database); reconnect with backoff" },

  // ---- WebSocket `error` frames (the socket stays open) -------------------------------------
  MALFORMED_FRAME: { on: ["frame"], message: "Expected a JSON frame of a known type", doc: "The frame is not JSON or not a known client frame" },
  FRAME_TOO_LARGE: { on: ["frame"], message: "The frame is too large", doc: "Client frames are at most 16 KiB" },
  REPLAY_INCOMPLETE: { on: ["frame"], message: "Some events are no longer held; refetch", doc: "`resume` asked for events older than the room keeps; GET the session" },

  // ---- Outcomes: a failed session's or generation's error_code -------------------------------
  OCR_FAILED: { on: ["outcome"], message: "The screenshots could not be read", doc: "OCR failed or was given up on; POST /sessions/{id}/retry" },
  NOT_A_CONVERSATION: { on: ["outcome"], message: "No chat conversation was found in the screenshots", doc: "Upload screenshots of a chat" },
  JOB_ENQUEUE_FAILED: { on: ["outcome"], message: "The work could not be queued; retry", doc: "QStash refused the job; retry the session or generate again" },
  SESSION_CHANGED: { on: ["outcome"], message: "The session changed before the generation started", doc: "Generate again on the current conversation" },
  JOB_FAILED: { on: ["outcome"], message: "Nothing could be written; try again", doc: "Every delivery of the job failed" },
  JOB_LOST: { on: ["outcome"], message: "The work stopped unexpectedly; try again", doc: "The run died and no delivery took it over" },

  // ---- AI: what a feature sees of a model call (stored on a failed generation) ---------------
  AI_CANCELLED: { on: ["ai"], message: "The generation was cancelled", doc: "A client's `cancel` stopped the model call" },
  AI_BAD_REQUEST: { on: ["ai", "outcome"], message: "The model refused the request", doc: "The vendor rejected the input (e.g. an unreadable image); retrying will not help" },
  AI_UNAVAILABLE: { on: ["ai", "outcome"], message: "No model could answer; try again", doc: "Every vendor failed or timed out" },
  AI_INVALID_OUTPUT: { on: ["ai", "outcome"], message: "The model's answer did not fit its schema", doc: "Every attempt answered outside the output schema" },

  // ---- ai_calls.error_code: one failed attempt (operators) -----------------------------------
  CANCELLED: { on: ["ai_call"], message: "The attempt was cancelled", doc: "The caller aborted the call" },
  FIRST_TOKEN_TIMEOUT: { on: ["ai_call"], message: "No first token in time", doc: "The vendor sent nothing before the first-token timeout" },
  TOTAL_TIMEOUT: { on: ["ai_call"], message: "The answer took too long", doc: "The stream outlasted the total timeout" },
  INVALID_OUTPUT: { on: ["ai_call"], message: "The answer did not fit the output schema", doc: "Retried, then the next model" },
  UPSTREAM_RATE_LIMITED: { on: ["ai_call"], message: "The vendor rate-limited the call", doc: "Vendor 429; retried after its Retry-After" },
  UPSTREAM_UNAVAILABLE: { on: ["ai_call"], message: "The vendor failed", doc: "Vendor 408/409/5xx; retried, then the next model" },
  UPSTREAM_BAD_REQUEST: { on: ["ai_call"], message: "The vendor rejected the request", doc: "Vendor 400/422: the request itself; no other model is tried" },
  UPSTREAM_REFUSED: { on: ["ai_call"], message: "The vendor refused the key or model", doc: "Vendor 401/403/404 or another 4xx: check the key and model name; the next model is tried" },
  UPSTREAM_CONNECTION: { on: ["ai_call"], message: "The connection to the vendor broke", doc: "No status: the connection or the stream was cut; retried" },

  // ---- push: what Expo said about a notification, logged for operators ------------------------
  PUSH_DEVICE_NOT_REGISTERED: { on: ["push"], message: "The device is no longer registered", doc: "Expo's `DeviceNotRegistered` (ticket or receipt): the app was uninstalled or the token expired; the token is disabled at once" },
  PUSH_MESSAGE_TOO_BIG: { on: ["push"], message: "The notification was too large", doc: "Expo's `MessageTooBig`: the payload passed 4 KiB; that notification is dropped, nothing is retried" },
  PUSH_RATE_EXCEEDED: { on: ["push"], message: "The device received too many notifications", doc: "Expo's `MessageRateExceeded`: too many notifications to one device; that notification is dropped" },
  PUSH_INVALID_CREDENTIALS: { on: ["push"], message: "The push credentials were refused", doc: "Expo's `InvalidCredentials`: the app's FCM/APNs credentials in Expo are wrong or revoked; fix them in Expo (logged as an error)" },
  PUSH_REJECTED: { on: ["push"], message: "Expo refused the notification", doc: "Any other Expo ticket or receipt error (e.g. `MismatchSenderId`); logged with Expo's error name" },
  PUSH_UNAVAILABLE: { on: ["push"], message: "Expo could not be reached", doc: "Expo answered 429/5xx (or nothing) on every retry, or a status no retry helps (e.g. 401 for a wrong `EXPO_ACCESS_TOKEN`); the job delivery fails and QStash retries it" },
} as const satisfies Record<string, Entry>;

type Catalog = typeof errorCatalog;
export type ErrorCode = keyof Catalog;

/** Codes an HTTP error body can carry. */
export type HttpErrorCode = { [K in ErrorCode]: Catalog[K] extends { status: number } ? K : never }[ErrorCode];
/** Codes a socket is closed with (the close frame's reason). */
export type CloseErrorCode = { [K in ErrorCode]: Catalog[K] extends { close: number } ? K : never }[ErrorCode];
/** Codes shown on one of the other surfaces. */
export type ErrorCodeOn<S extends Surface> = { [K in ErrorCode]: Catalog[K] extends { on: readonly (infer T)[] } ? (S extends T ? K : never) : never }[ErrorCode];

export type FrameErrorCode = ErrorCodeOn<"frame">;
export type OutcomeErrorCode = ErrorCodeOn<"outcome">;
export type AiErrorCode = ErrorCodeOn<"ai">;
export type AiCallErrorCode = ErrorCodeOn<"ai_call">;
export type PushErrorCode = ErrorCodeOn<"push">;

export function errorMessage(code: ErrorCode): string {
  return errorCatalog[code].message;
}

/**
 * An error of this codebase's own, with a stable code and a message written here (never a
 * library's text or user input): the logger prints both (see logger.ts).
 */
export abstract class CodedError extends Error {
  abstract readonly code: ErrorCode;
}

export class AppError extends CodedError {
  readonly code: HttpErrorCode;
  readonly status: ContentfulStatusCode;
  readonly details: unknown;
  /** Retry-After for this one refusal, when it depends on the caller (a quota); else the catalog's. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: HttpErrorCode, options: { message?: string; details?: unknown; cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(options.message ?? errorCatalog[code].message, { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.status = errorCatalog[code].status;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

const surfaceNames: Record<Surface, string> = {
  frame: "`error` frame",
  outcome: "`error_code`",
  ai: "AiError",
  ai_call: "`ai_calls.error_code`",
  push: "push log",
};

/** Where a code shows, in words: "HTTP 404", "close 4401", "`error` frame" … */
export function whereShown(code: ErrorCode): string[] {
  const entry: Entry = errorCatalog[code];
  return [
    ...(entry.status ? [`HTTP ${entry.status}`] : []),
    ...(entry.close ? [`close ${entry.close}`] : []),
    ...(entry.on ?? []).map((surface) => surfaceNames[surface]),
  ];
}

/** The catalog as a Markdown table (the README's, kept current by `npm run docs:errors`). */
export function errorCatalogMarkdown(): string {
  const rows = (Object.keys(errorCatalog) as ErrorCode[]).map((code) => `| \`${code}\` | ${whereShown(code).join(", ")} | ${errorCatalog[code].doc} |`);
  return ["| code | where | when |", "|---|---|---|", ...rows].join("\n");
}

/** The codes of one surface, for a zod enum (the realtime frames' `code` fields). */
export function codesOn<S extends Surface>(surface: S): [ErrorCodeOn<S>, ...ErrorCodeOn<S>[]] {
  const codes = (Object.keys(errorCatalog) as ErrorCode[]).filter((code) => (errorCatalog[code] as Entry).on?.includes(surface));
  return codes as [ErrorCodeOn<S>, ...ErrorCodeOn<S>[]];
}
