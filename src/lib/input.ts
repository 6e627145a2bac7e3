import { z } from "zod";

// U+0000, a high surrogate with no low one after it, or a low one with no high one before it.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Text Postgres can store: its `text` and `jsonb` refuse U+0000, and UTF-8 has no unpaired
 * surrogate, while a JSON string (and so a JS one) may hold either. Input carrying one is refused
 * at the edge (400), not by the database (500).
 */
export function isStorableText(text: string): boolean {
  return !UNSTORABLE.test(text);
}

const UNSTORABLE_TEXT_MESSAGE = "Text may not contain U+0000 or an unpaired surrogate";

/** The path of the first string (or object key) in `value` that is not storable text, else undefined. */
export function unstorableTextPath(value: unknown, path: PropertyKey[] = []): PropertyKey[] | undefined {
  if (typeof value === "string") return isStorableText(value) ? undefined : path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unstorableTextPath(value[i], [...path, i]);
      if (found) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const found = isStorableText(key) ? unstorableTextPath(item, [...path, key]) : [...path, key];
      if (found) return found;
    }
  }
  return undefined;
}

/** A string that is storable text, for input no OpenAPI route validates (token claims, Clerk events). */
export const storableString = () => z.string().refine(isStorableText, UNSTORABLE_TEXT_MESSAGE);

/** Zod issues for the first unstorable text in `value` (none when all of it is storable). */
export function unstorableTextIssues(value: unknown): Array<{ path: PropertyKey[]; message: string; code: "custom" }> {
  const path = unstorableTextPath(value);
  return path ? [{ path, message: UNSTORABLE_TEXT_MESSAGE, code: "custom" }] : [];
}

// What Postgres `timestamptz` and a JS Date both hold, and what anyone means: years 1 to 9999
// (Postgres has no year 0; an offset can push 9999-12-31 into year 10000).
const EARLIEST = Date.parse("0001-01-01T00:00:00Z");
const LATEST = Date.parse("9999-12-31T23:59:59.999Z");
const inRange = (ms: number) => Number.isFinite(ms) && ms >= EARLIEST && ms <= LATEST;

/** An ISO 8601 instant with a zone (`Z` or an offset) between the years 1 and 9999 UTC. */
export const instantSchema = z.iso.datetime({ offset: true }).refine((text) => inRange(Date.parse(text)), "Expected an instant between the years 1 and 9999");

/** A calendar date (YYYY-MM-DD) that exists, between the years 1 and 9999. */
export const calendarDateSchema = z.iso.date().refine((text) => inRange(Date.parse(`${text}T00:00:00Z`)), "Expected a date between the years 1 and 9999");
