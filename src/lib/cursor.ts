import { type AnyColumn, type SQL, sql } from "drizzle-orm";
import { fromBase64Url, toBase64Url } from "./encoding";
import { AppError } from "./errors";

/**
 * Keyset pagination, newest first: the cursor is the last row's (created_at to the
 * microsecond, id), so rows inserted meanwhile sort before it and pages neither repeat nor skip.
 */
export type Cursor = { createdAt: string; id: string };

export function encodeCursor(cursor: Cursor): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify([cursor.createdAt, cursor.id])));
}

// What encodeCursor writes: cursorTime's timestamp (to the microsecond, UTC) and a CUID2 id.
// Anything else did not come from this API, and Postgres might refuse it (year 0, "2030").
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const CURSOR_ID = /^[a-z0-9]{1,64}$/;

function isCursorTime(text: string): boolean {
  if (!CURSOR_TIME.test(text)) return false;
  const date = new Date(text);
  // A date that exists (no 30 February) in the years Postgres and a JS Date share.
  return !Number.isNaN(date.getTime()) && date.getUTCFullYear() >= 1 && date.toISOString().slice(0, 23) === text.slice(0, 23);
}

export function decodeCursor(text: string): Cursor {
  try {
    const [createdAt, id, ...rest] = JSON.parse(new TextDecoder().decode(fromBase64Url(text))) as unknown[];
    if (rest.length === 0 && typeof createdAt === "string" && typeof id === "string" && isCursorTime(createdAt) && CURSOR_ID.test(id)) return { createdAt, id };
  } catch {
    // Falls through to the validation error.
  }
  throw new AppError("VALIDATION_ERROR", { message: "Invalid cursor", details: { target: "query", issues: [{ path: ["cursor"], message: "Invalid cursor" }] } });
}

/** A timestamp column as the cursor keeps it: UTC, to the microsecond (a JS Date drops those). */
export function cursorTime(column: AnyColumn): SQL<string> {
  return sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/** Rows after the cursor, in (created_at desc, id desc) order. */
export function afterCursor(createdAt: AnyColumn, id: AnyColumn, cursor: Cursor | undefined): SQL | undefined {
  return cursor ? sql`(${createdAt}, ${id}) < (${cursor.createdAt}::timestamptz, ${cursor.id})` : undefined;
}
