import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { generateKeyPair, type JWK, SignJWT } from "jose";
import { type MintOptions, mintSessionToken } from "../local/clerk/token";
import { sql } from "drizzle-orm";
import worker from "../src/index";
import { createDatabase } from "../src/lib/db";
import { type AppConfig, loadConfig } from "../src/lib/env";
import { createRedis } from "../src/lib/redis";
import { pngBytes } from "./images";

/** The parsed config of the test Worker; fails loudly if the global setup handed in bad vars. */
export function testConfig(): AppConfig {
  const loaded = loadConfig(env);
  if (!loaded.ok) throw new Error(`test config invalid: ${loaded.invalidVariables.join(", ")}`);
  return loaded.config;
}

export function testDb() {
  return createDatabase(testConfig());
}

/** Empties every application table (not the migration journal) so each test starts clean. */
export async function resetDatabase(): Promise<void> {
  const db = testDb();
  const result = await db.execute<{ tablename: string }>(
    sql`select tablename from pg_tables where schemaname = 'public'`,
  );
  const tables = result.rows.map((row) => `"public"."${row.tablename}"`);
  if (tables.length > 0) await db.execute(sql.raw(`TRUNCATE ${tables.join(", ")} RESTART IDENTITY CASCADE`));
}

let direct = false;

/**
 * From now on this file's requests (`call`, `callAs` and every helper built on them) go through
 * `callWorker` instead of the pool's `SELF` binding. For a file that makes thousands of requests.
 */
export function callTheEntryDirectly(): void {
  direct = true;
}

/** A request to the Worker as deployed (its default export), by path. */
export function call(path: string, init?: RequestInit): Promise<Response> {
  return direct ? callWorker(path, init) : SELF.fetch(`http://127.0.0.1:8787${path}`, init);
}

/**
 * A request straight to the Worker's default export in this isolate. The same Worker code answers
 * as through `SELF`; but `SELF` in @cloudflare/vitest-pool-workers 0.23.0 wraps a prototype in one
 * more Proxy on every request (cloudflare/workers-sdk #15092, #15446), so each request of a file is
 * slower than the one before: past a few hundred, ten to a hundred times slower. `settle` waits for
 * the request's waitUntil work too, for a caller that then counts what the request changed.
 */
export async function callWorker(path: string, init: RequestInit = {}, options: { settle?: boolean } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  // Sent over the wire, a body of known size carries its Content-Length (a stream is chunked); a Request built in place does not.
  const size = bodySize(init.body);
  if (size !== undefined && !headers.has("content-length")) headers.set("content-length", String(size));
  else if (init.body instanceof ReadableStream && !headers.has("content-length")) headers.set("transfer-encoding", "chunked");
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`http://127.0.0.1:8787${path}`, { ...init, headers }), env, ctx);
  const settled = waitOnExecutionContext(ctx);
  if (options.settle) await settled;
  else settled.catch(() => undefined);
  return response;
}

function bodySize(body: RequestInit["body"]): number | undefined {
  if (typeof body === "string") return new TextEncoder().encode(body).byteLength;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  return undefined;
}

async function control(action: string): Promise<void> {
  const response = await fetch(`${env.TEST_CONTROL_URL}/${action}`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.TEST_CONTROL_TOKEN}` },
  });
  if (response.status !== 204) throw new Error(`${action} failed: ${await response.text()}`);
}

/** Stops or starts the real redis-server behind the Upstash REST adapter. */
export async function controlRedis(action: "stop" | "start"): Promise<void> {
  await control(`redis/${action}`);
  if (action === "start") {
    // The adapter reconnects with a short backoff: wait until commands go through again, several
    // times in a row (its connections may come back one after the other).
    const redis = createRedis(testConfig(), { retries: 0 });
    const deadline = Date.now() + 10_000;
    for (let streak = 0; streak < 3; ) {
      streak = (await redis.ping().then(() => true, () => false)) ? streak + 1 : 0;
      if (Date.now() > deadline) throw new Error("redis did not come back within 10 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const DROPPING_DATABASE_URL = "postgresql://postgres:postgres@127.0.0.3:5432/postgres";

/** The test database reached through TEST_DROPPING_NEON_ENDPOINT: as env overrides, and as a handle. */
export const droppingDatabaseVars = () => ({ DATABASE_URL: DROPPING_DATABASE_URL, NEON_HTTP_ENDPOINT: env.TEST_DROPPING_NEON_ENDPOINT });
export const droppingDb = () => createDatabase(droppingDatabaseVars());

/** The next `count` requests through TEST_DROPPING_NEON_ENDPOINT lose their connection before they reach Postgres. */
export async function dropNextDatabaseRequests(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await control("neon/drop-next");
}

/** A Clerk-shaped session token signed with the key the test Worker trusts. */
export function mintToken(sub: string, options: Omit<MintOptions, "sub"> = {}): Promise<string> {
  return mintSessionToken(JSON.parse(env.TEST_CLERK_PRIVATE_JWK) as JWK, { sub, ...options });
}

/** A fresh Clerk-like user id, so tests never share users by accident. */
export function clerkId(): string {
  return `user_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** A request to the Worker with a bearer token and, when given, a JSON body. */
export async function callAs(token: string, path: string, init: { method?: string; json?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, ...init.headers };
  let body: string | undefined;
  if (init.json !== undefined) {
    headers["Content-Type"] ??= "application/json";
    body = JSON.stringify(init.json);
  }
  return call(path, { method: init.method ?? "GET", headers, body });
}

export type Envelope<T = Record<string, unknown>> =
  | { success: true; data: T }
  | { success: false; error: { code: string; message: string; details?: unknown } };

export async function json<T = Record<string, unknown>>(response: Response): Promise<Envelope<T>> {
  return (await response.json()) as Envelope<T>;
}

/** A well-formed session token signed by a key the Worker does not trust. */
export async function forgedToken(sub = clerkId()): Promise<string> {
  const { privateKey } = await generateKeyPair("RS256");
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ azp: "http://localhost:8081", sid: "sess_forged" })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: "local-dev" })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(privateKey);
}

/** A fresh Clerk user, provisioned through the API: its token and internal id. */
export async function signedInUser(): Promise<{ token: string; userId: string }> {
  const token = await mintToken(clerkId());
  const me = await json<{ id: string }>(await callAs(token, "/api/v1/users/me"));
  if (!me.success) throw new Error(`provisioning failed: ${JSON.stringify(me)}`);
  return { token, userId: me.data.id };
}

/** Deletes every object in the test R2 bucket. */
export async function clearBucket(): Promise<void> {
  const keys = await storedKeys();
  if (keys.length > 0) await env.IMAGES.delete(keys);
}

/** The keys of every object in the test R2 bucket. */
export async function storedKeys(): Promise<string[]> {
  return (await env.IMAGES.list()).objects.map((object) => object.key);
}

export type UploadGrant = { uploadUrl: string; method: "PUT"; headers: Record<string, string>; key: string; expiresAt: string };

/** A signed upload URL, asked for as the app does (`GET /sessions/upload-url`). */
export async function uploadGrant(token: string, contentType = "image/png", size = 2048): Promise<UploadGrant> {
  const response = await callAs(token, `/api/v1/sessions/upload-url?contentType=${encodeURIComponent(contentType)}&size=${size}`);
  const body = await json<UploadGrant>(response);
  if (!body.success) throw new Error(`upload-url failed: ${JSON.stringify(body)}`);
  return body.data;
}

/** PUTs a body to an upload URL (its path and query), through SELF: the bytes cross the runtime's HTTP layer. */
export function putUpload(url: string, body: BodyInit | null, headers: Record<string, string> = { "Content-Type": "image/png" }) {
  const { pathname, search } = new URL(url);
  return call(`${pathname}${search}`, { method: "PUT", headers, body });
}

/**
 * A PNG uploaded the way the app does it (signed URL, then PUT): its key, not yet in any session.
 * `seed` makes its bytes (and so its SHA-256) differ from another upload's.
 */
export async function uploadImage(token: string, seed?: number): Promise<string> {
  const grant = await uploadGrant(token, "image/png", 1024);
  const bytes = pngBytes(1024);
  if (seed !== undefined) bytes[100] = seed;
  const response = await putUpload(grant.uploadUrl, bytes);
  if (response.status !== 201) throw new Error(`upload failed: ${response.status}`);
  return grant.key;
}
