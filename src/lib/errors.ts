import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * The one error catalog: code → HTTP status → default message, and for a failure that passes by
 * itself, the seconds a client should wait before trying again (sent as Retry-After). Clients
 * switch on `code`.
 */
export const errorCatalog = {
  VALIDATION_ERROR: { status: 400, message: "The request is invalid" },
  INVALID_JSON: { status: 400, message: "The request body is not valid JSON" },
  WEBHOOK_SIGNATURE_INVALID: { status: 400, message: "The webhook signature is missing, invalid or stale" },
  UPLOAD_LENGTH_MISMATCH: { status: 400, message: "The body length differs from the size the upload URL was signed for" },
  UNAUTHORIZED: { status: 401, message: "Authentication required" },
  TOKEN_EXPIRED: { status: 401, message: "The session token has expired" },
  ACCOUNT_DELETED: { status: 401, message: "This account has been deleted" },
  JOB_SIGNATURE_INVALID: { status: 401, message: "The job delivery's signature is missing, invalid or stale" },
  UPLOAD_URL_INVALID: { status: 403, message: "The upload URL is invalid or has expired" },
  NOT_FOUND: { status: 404, message: "Not found" },
  SESSION_NOT_FOUND: { status: 404, message: "Session not found" },
  MESSAGE_NOT_FOUND: { status: 404, message: "Message not found" },
  UPLOAD_NOT_FOUND: { status: 404, message: "No finished upload has this key" },
  GENERATION_NOT_FOUND: { status: 404, message: "Generation not found" },
  SUGGESTION_NOT_FOUND: { status: 404, message: "Suggestion not found" },
  METHOD_NOT_ALLOWED: { status: 405, message: "Method not allowed" },
  UPLOAD_ALREADY_EXISTS: { status: 409, message: "Something was already uploaded to this key" },
  UPLOAD_ALREADY_USED: { status: 409, message: "This upload already belongs to a session" },
  INVALID_SESSION_STATE: { status: 409, message: "The session cannot do that in its current state" },
  CONVERSATION_EMPTY: { status: 409, message: "The conversation has no messages to reply to" },
  CONVERSATION_TOO_LONG: { status: 409, message: "A conversation holds at most 200 messages" },
  LENGTH_REQUIRED: { status: 411, message: "Send the body with a Content-Length" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "Unsupported content type" },
  INVALID_IMAGE: { status: 422, message: "The body is not an image of the signed type" },
  UPGRADE_REQUIRED: { status: 426, message: "This endpoint only accepts WebSocket upgrades" },
  RATE_LIMITED: { status: 429, message: "Too many requests" },
  AI_BUDGET_EXCEEDED: { status: 429, message: "The daily AI budget is used up" },
  INTERNAL_ERROR: { status: 500, message: "An unexpected error occurred" },
  CONFIG_INVALID: { status: 503, message: "The service is misconfigured" },
  SERVICE_UNAVAILABLE: { status: 503, message: "A dependency is unavailable", retryAfterSeconds: 2 },
  DATABASE_UNAVAILABLE: { status: 503, message: "The database could not be reached; try again shortly", retryAfterSeconds: 2 },
  JOB_RUN_IN_PROGRESS: { status: 503, message: "Another delivery of this job is still running; deliver again later", retryAfterSeconds: 10 },
} as const satisfies Record<string, { status: ContentfulStatusCode; message: string; retryAfterSeconds?: number }>;

export type ErrorCode = keyof typeof errorCatalog;

/**
 * An error of this codebase's own, with a stable code and a message written here (never a
 * library's text or user input): the logger prints both (see logger.ts).
 */
export abstract class CodedError extends Error {
  abstract readonly code: string;
}

export class AppError extends CodedError {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  readonly details: unknown;

  constructor(code: ErrorCode, options: { message?: string; details?: unknown; cause?: unknown } = {}) {
    super(options.message ?? errorCatalog[code].message, { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.status = errorCatalog[code].status;
    this.details = options.details;
  }
}
