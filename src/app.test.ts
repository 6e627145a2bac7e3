import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { call, callAs, clerkId, forgedToken, json, mintToken, resetDatabase } from "../test/helpers";
import { createApp } from "./app";
import type { Bindings } from "./lib/env";

// Every authenticated route, with a body that would be valid, so only auth can fail.
const authenticatedRoutes: Array<{ method: string; path: string; json?: unknown }> = [
  { method: "GET", path: "/api/v1/users/me" },
  { method: "PUT", path: "/api/v1/users/me", json: { firstName: "Sam" } },
  { method: "DELETE", path: "/api/v1/users/me" },
  {
    method: "POST",
    path: "/api/v1/users/me/onboarding",
    json: { gender: "female", lookingFor: "men", ageRange: "25-34", datingGoal: "relationship" },
  },
  { method: "POST", path: "/api/v1/users/me/push-tokens", json: { token: "ExponentPushToken[abcdefghijklmnop]", platform: "ios" } },
  { method: "DELETE", path: `/api/v1/users/me/push-tokens/${encodeURIComponent("ExponentPushToken[abcdefghijklmnop]")}` },
  { method: "GET", path: "/api/v1/users/me/usage" },
];

describe("every authenticated route", () => {
  beforeEach(resetDatabase);

  it("refuses a missing, expired, foreign-signed or wrong-party token", async () => {
    const now = Math.floor(Date.now() / 1000);
    const bad = {
      missing: "",
      expired: await mintToken(clerkId(), { nowSeconds: now - 600, ttlSeconds: 60 }),
      foreign: await forgedToken(),
      wrongParty: await mintToken(clerkId(), { azp: "https://elsewhere.example" }),
    };
    for (const route of authenticatedRoutes) {
      for (const [kind, token] of Object.entries(bad)) {
        const response = await callAs(token, route.path, { method: route.method, json: route.json });
        expect(response.status, `${route.method} ${route.path} with ${kind} token`).toBe(401);
        const body = await json(response);
        expect(body).toMatchObject({ success: false, error: { code: kind === "expired" ? "TOKEN_EXPIRED" : "UNAUTHORIZED" } });
      }
    }
  });
});

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

  it("answers 500 INTERNAL_ERROR with the request id and nothing internal when a dependency breaks mid-request", async () => {
    const app = createApp();
    const ctx = createExecutionContext();
    const token = await mintToken(clerkId());
    const response = await app.fetch(
      new Request("http://127.0.0.1/api/v1/users/me", { headers: { Authorization: `Bearer ${token}`, "X-Request-Id": "req-500-check" } }),
      {
        ...env,
        DATABASE_URL: "postgresql://postgres:postgres@127.0.0.2:5999/postgres",
        NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql",
        LOG_LEVEL: "error",
      } as Bindings,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      success: false,
      error: { code: "INTERNAL_ERROR", message: "An unexpected error occurred", details: { requestId: "req-500-check" } },
    });
    expect(text).not.toMatch(/select|users|127\.0\.0\.1|stack|Error:/i);
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
