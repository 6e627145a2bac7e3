import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorCode, errorCatalog } from "./errors";

/** The one response envelope of SPEC §4. */
export type SuccessBody<T> = { success: true; data: T };
export type ErrorBody = {
  success: false;
  error: { code: ErrorCode; message: string; details?: unknown };
};

export function ok<T>(c: Context, data: T, status: ContentfulStatusCode = 200) {
  return c.json({ success: true, data } satisfies SuccessBody<T>, status);
}

export function errorBody(code: ErrorCode, message?: string, details?: unknown): ErrorBody {
  const error: ErrorBody["error"] = { code, message: message ?? errorCatalog[code].message };
  if (details !== undefined) error.details = details;
  return { success: false, error };
}

export function fail(c: Context, code: ErrorCode, message?: string, details?: unknown) {
  return c.json(errorBody(code, message, details), errorCatalog[code].status);
}
