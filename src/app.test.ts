import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import {
  call,
  callAs,
  clerkId,
  dropNextDatabaseRequests,
  droppingDatabaseVars,
  json,
  mintToken,
  resetDatabase,
  testDb,
} from "../test/helpers";
import { createApp } from "./app";
import type { Bindings } from "./lib/env";

/** The app as deployed with `overrides` in its env; quiet logs. */
async function appFetch(path: string, headers: Record<string, string>, overrides: Partial<Record<string, string>> = {}) {
  const ctx = createExecutionContext();
  const response = await createApp().fetch(new Request(`http://127.0.0.1${path}`, { headers }), { ...env, LOG_LEVEL: "error", ...overrides } as Bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("cross-cutting behaviour", () => {
  beforeEach(resetDatabase);

  it("answers CORS preflights for allowed origins only", async () => {
    const preflight = (origin: string) =>
      call("/api/v1/users/me", {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization,content-type" },
      });
    const allowed = await preflight("http://localhost:8081");
    expect(allowed.headers.get("Access-Control-Allow-Origin")).toBe("http://localhost:8081");
    expect(allowed.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("authorization");
    const denied = await preflight("https://evil.example");
    expect(denied.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("sets secure headers on every response", async () => {
    const response = await call("/api/v1/health");
    expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(response.headers.get("Strict-Transport-Security")).toMatch(/max-age=/);
    expect(response.headers.get("X-Frame-Options")).toBe("SAMEORIGIN");
  });

  it("answers 500 INTERNAL_ERROR with the request id and nothing internal when a statement fails in Postgres", async () => {
    // A real Postgres error with a SQLSTATE (42P01: the table is gone) is not transient: still a 500.
    const db = testDb();
    await db.execute(sql`alter table users rename to users_away`);
    try {
      const response = await appFetch("/api/v1/users/me", { Authorization: `Bearer ${await mintToken(clerkId())}`, "X-Request-Id": "req-500-check" });
      expect(response.status).toBe(500);
      expect(response.headers.get("Retry-After")).toBeNull();
      const text = await response.text();
      expect(JSON.parse(text)).toEqual({
        success: false,
        error: { code: "INTERNAL_ERROR", message: "An unexpected error occurred", details: { requestId: "req-500-check" } },
      });
      expect(text).not.toMatch(/select|users|stack|Error:/i);
    } finally {
      await db.execute(sql`alter table users_away rename to users`);
    }
  });

  it("answers 503 DATABASE_UNAVAILABLE with Retry-After, never a 500, when the database cannot be reached", async () => {
    const response = await appFetch(
      "/api/v1/users/me",
      { Authorization: `Bearer ${await mintToken(clerkId())}` },
      // Another database host whose endpoint is a closed port: every request fails to connect.
      { DATABASE_URL: "postgresql://postgres:postgres@127.0.0.2:5999/postgres", NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql" },
    );
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("2");
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      success: false,
      error: { code: "DATABASE_UNAVAILABLE", message: "The database could not be reached; try again shortly" },
    });
    expect(text).not.toMatch(/select|users|127\.0\.0\.1|stack|Error:/i);
  });

  it("serves a request whose first database read was lost: the read is retried once", async () => {
    await dropNextDatabaseRequests(1);
    const response = await appFetch("/api/v1/users/me", { Authorization: `Bearer ${await mintToken(clerkId())}` }, droppingDatabaseVars());
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ success: true, data: { onboardingCompleted: false } });
  });

  it("marks every authenticated answer no-store, errors included, and leaves public ones alone", async () => {
    const token = await mintToken(clerkId());
    const me = await appFetch("/api/v1/users/me", { Authorization: `Bearer ${token}` });
    expect(me.status).toBe(200);
    expect(me.headers.get("Cache-Control")).toBe("no-store");
    const missing = await appFetch("/api/v1/sessions/nope", { Authorization: `Bearer ${token}` });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("Cache-Control")).toBe("no-store");
    const refused = await appFetch("/api/v1/users/me", {});
    expect(refused.status).toBe(401);
    expect(refused.headers.get("Cache-Control")).toBe("no-store");
    expect((await appFetch("/api/v1/health", {})).headers.get("Cache-Control")).toBeNull();
  });

  it("serves the OpenAPI document and the docs page", async () => {
    const doc = await call("/api/v1/openapi.json");
    expect(doc.status).toBe(200);
    expect(((await doc.json()) as { openapi: string }).openapi).toBe("3.1.0");
    const page = await call("/api/v1/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("Content-Type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain("/api/v1/openapi.json");
    // Scripts from this origin, and of inline ones only the page's own, by hash.
    const policy = page.headers.get("Content-Security-Policy") ?? "";
    expect(policy).toContain("default-src 'none'");
    const inline = [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map((match) => match[1]!);
    expect(inline.length).toBeGreaterThan(0);
    for (const script of inline) {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(script)));
      expect(policy).toContain(`'sha256-${btoa(String.fromCharCode(...digest))}'`);
    }
    expect(policy).not.toContain("unsafe-eval");
    expect(policy.match(/script-src[^;]*/)?.[0]).not.toContain("unsafe-inline");
    // Served from this Worker's own static assets, so the page works without a CDN.
    for (const asset of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
      const path = `/api/v1/docs/assets/swagger-ui-dist/${asset}`;
      expect(html).toContain(path);
      // The platform answers these paths from the assets before the Worker runs; the test pool
      // does not route SELF through assets, so ask the binding the same way.
      const file = await env.ASSETS.fetch(`http://127.0.0.1${path}`);
      expect(file.status, path).toBe(200);
      expect((await file.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
  });
});
