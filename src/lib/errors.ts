import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The one error catalog: code → HTTP status → default message. Clients switch on `code`. */
export const errorCatalog = {
  VALIDATION_ERROR: { status: 400, message: "The request is invalid" },
  INVALID_JSON: { status: 400, message: "The request body is not valid JSON" },
  WEBHOOK_SIGNATURE_INVALID: { status: 400, message: "The webhook signature is missing, invalid or stale" },
  UNAUTHORIZED: { status: 401, message: "Authentication required" },
  TOKEN_EXPIRED: { status: 401, message: "The session token has expired" },
  NOT_FOUND: { status: 404, message: "Not found" },
  METHOD_NOT_ALLOWED: { status: 405, message: "Method not allowed" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "Unsupported content type" },
  RATE_LIMITED: { status: 429, message: "Too many requests" },
  AI_BUDGET_EXCEEDED: { status: 429, message: "The daily AI budget is used up" },
  INTERNAL_ERROR: { status: 500, message: "An unexpected error occurred" },
  CONFIG_INVALID: { status: 503, message: "The service is misconfigured" },
  SERVICE_UNAVAILABLE: { status: 503, message: "A dependency is unavailable" },
} as const satisfies Record<string, { status: ContentfulStatusCode; message: string }>;

export type ErrorCode = keyof typeof errorCatalog;

export class AppError extends Error {
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
