import { NeonDbError, neon, neonConfig } from "@neondatabase/serverless";
import { and, asc, eq, gt, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-http";
import type { PgColumn } from "drizzle-orm/pg-core";
import * as schema from "../db/schema";
import type { AppConfig } from "./env";

export type Database = ReturnType<typeof createDatabase>;

type EndpointFn = (host: string, port: number | string, options?: { jwtAuth?: boolean }) => string;

// Neon's own routing (https://api.<host>/sql), captured before anything replaces it.
const neonEndpoint = neonConfig.fetchEndpoint as EndpointFn;
// Locally, database hosts answered by a stand-in endpoint instead of Neon.
const localEndpoints = new Map<string, string>();

const RETRY_PAUSE_MIN_MS = 20;
const RETRY_PAUSE_JITTER_MS = 100;

/**
 * Whether a request of the driver only reads: a batch the server runs READ ONLY, or SELECTs
 * (what drizzle's select builder sends). SELECT … INTO creates a table, so it does not count;
 * a SELECT calling a function that writes (nextval, …) would, and none of ours does.
 */
function onlyReads(init: RequestInit | undefined): boolean {
  if (new Headers(init?.headers).get("Neon-Batch-Read-Only") === "true") return true;
  if (typeof init?.body !== "string") return false;
  const payload = JSON.parse(init.body) as { query?: unknown; queries?: Array<{ query?: unknown }> };
  const statements = payload.queries ? payload.queries.map((entry) => entry.query) : [payload.query];
  return statements.every((text) => typeof text === "string" && /^\s*select\b/i.test(text) && !/\binto\b/i.test(text));
}

/**
 * The driver's fetch (`neonConfig.fetchFunction`, global like the endpoint): a read whose request
 * got no answer at all — the connection failed or was lost — is sent once more after a short
 * jittered pause, so that a hiccup costs a read some milliseconds instead of the request, and a
 * burst of failed reads does not come back as one burst. Being the driver's own fetch, it covers
 * every query of every handle, once. Writes are not retried: when a connection is lost, nothing
 * says whether the server ran the statement before it went (a write run twice is a duplicate),
 * and fetch cannot prove a request never left — workerd reports a refused connection and one
 * reset mid-request alike. A failed write answers 503 DATABASE_UNAVAILABLE for the client, or
 * QStash, to retry the whole request. An HTTP answer, even an error, is returned as it is.
 */
async function fetchRetryingReads(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(input, init);
  } catch (error) {
    if (init?.signal?.aborted || !onlyReads(init)) throw error;
    await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MIN_MS + Math.random() * RETRY_PAUSE_JITTER_MS));
    return fetch(input, init);
  }
}

/**
 * The driver error behind `error` when the database could not be reached, else undefined.
 * @neondatabase/serverless wraps a failed fetch as "Error connecting to database: …" (with the
 * fetch error as `sourceError`) and any answer but 2xx and 400 as "Server error (HTTP status …)";
 * neither has a SQLSTATE `code`. A 400 is Postgres refusing the statement (a constraint, a syntax
 * error): not transient. drizzle puts the driver error in `cause` for a single query; `db.batch`
 * rejects with it bare.
 */
export function unreachableDatabaseError(error: unknown): NeonDbError | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 4; current = current.cause, depth++) {
    if (!(current instanceof NeonDbError)) continue;
    const unreachable = current.code === undefined && (current.sourceError !== undefined || current.message.startsWith("Server error (HTTP status "));
    return unreachable ? current : undefined;
  }
  return undefined;
}

/**
 * Drizzle over Neon's HTTP driver — the same code path in production and locally. The driver
 * takes its endpoint only from a global setting, so locally (`NEON_HTTP_ENDPOINT`) that setting
 * routes by database host: each DATABASE_URL keeps its own endpoint, whatever was created last.
 */
export function createDatabase(config: Pick<AppConfig, "DATABASE_URL" | "NEON_HTTP_ENDPOINT">) {
  neonConfig.fetchFunction = fetchRetryingReads;
  if (config.NEON_HTTP_ENDPOINT) {
    localEndpoints.set(new URL(config.DATABASE_URL).host, config.NEON_HTTP_ENDPOINT);
    neonConfig.fetchEndpoint = ((host, port, options) =>
      localEndpoints.get(port ? `${host}:${port}` : host) ?? neonEndpoint(host, port, options)) satisfies EndpointFn;
  }
  return drizzle({ client: neon(config.DATABASE_URL), schema });
}

/**
 * One page of the ids of the rows one owner has in a table (`id` and `owner` are its columns), in
 * id order after `afterId`: for walking through everything of an owner (the account purge).
 */
export async function idsOwnedBy(
  db: Database,
  columns: { id: PgColumn; owner: PgColumn },
  ownerId: string,
  page: { afterId?: string; limit: number },
): Promise<string[]> {
  const rows = await db
    .select({ id: sql<string>`${columns.id}` })
    .from(columns.id.table)
    .where(and(eq(columns.owner, ownerId), page.afterId === undefined ? undefined : gt(columns.id, page.afterId)))
    .orderBy(asc(columns.id))
    .limit(page.limit);
  return rows.map((row) => row.id);
}
