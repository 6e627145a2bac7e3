import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type HttpErrorCode, errorCatalog } from "./errors";

/** The one response envelope of SPEC §4. */
export type SuccessBody<T> = { success: true; data: T };
export type ErrorBody = {
  success: false;
  error: { code: HttpErrorCode; message: string; details?: unknown };
};

export function ok<T, S extends ContentfulStatusCode = 200>(c: Context, data: T, status?: S) {
  return c.json({ success: true as const, data }, (status ?? 200) as S);
}

export function errorBody(code: HttpErrorCode, message?: string, details?: unknown): ErrorBody {
  const error: ErrorBody["error"] = { code, message: message ?? errorCatalog[code].message };
  if (details !== undefined) error.details = details;
  return { success: false, error };
}

export function fail<C extends HttpErrorCode>(c: Context, code: C, message?: string, details?: unknown) {
  const entry = errorCatalog[code];
  if ("retryAfterSeconds" in entry) c.header("Retry-After", String(entry.retryAfterSeconds));
  return c.json(errorBody(code, message, details), entry.status as (typeof errorCatalog)[C]["status"]);
}
