import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Ratelimit } from "@upstash/ratelimit";
import { clerkId, controlRedis, json, mintToken, resetDatabase, testConfig } from "../../test/helpers";
import { createApp } from "../app";
import type { Bindings } from "./env";
import { ok } from "./envelope";
import { createLogger } from "./logger";
import { createRouter } from "./openapi";
import { rateLimit, type RateLimitTier } from "./rate-limit";
import { createRedis } from "./redis";
import { withServices } from "./services";

/** The real app with its own limits: one env object per test, as one deployment would have. */
function appWith(overrides: Record<string, string>) {
  const app = createApp();
  const bindings = { ...env, ...overrides } as Bindings;
  return async (path: string, init: RequestInit = {}) => {
    const ctx = createExecutionContext();
    const response = await app.fetch(new Request(`http://127.0.0.1${path}`, init), bindings, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** A router limited by `tier` for the user named in `x-test-user`; errors answer their code and status. */
function limitedRouter(tier: RateLimitTier) {
  const router = createRouter();
  router.use("*", async (c, next) => {
    c.set("logger", createLogger({ level: "error" }));
    await next();
  });
  router.use("*", withServices(), async (c, next) => {
    c.set("user", { id: c.req.header("x-test-user") } as never);
    await next();
  });
  router.use("*", rateLimit(tier));
  router.onError((error, c) => c.json({ code: (error as { code?: string }).code }, (error as { status?: 429 | 503 }).status ?? 500));
  return router;
}

describe("rate limits", () => {
  beforeEach(resetDatabase);
  afterEach(() => controlRedis("start"));

  it("limits a user, answers 429 with Retry-After and RateLimit headers, then recovers", async () => {
    const fetchApp = appWith({ RATE_LIMIT_USER: "3", RATE_LIMIT_WINDOW_SECONDS: "1" });
    const headers = { Authorization: `Bearer ${await mintToken(clerkId())}` };
    // Start just after a window boundary, so the burst never straddles two windows (the sliding
    // window would then weigh part of it and the counts below would be off by one).
    await new Promise((resolve) => setTimeout(resolve, 1_000 - (Date.now() % 1_000) + 10));
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetchApp("/api/v1/users/me", { headers });
      expect(response.status).toBe(200);
      expect(response.headers.get("RateLimit-Limit")).toBe("3");
      remaining.push(response.headers.get("RateLimit-Remaining") ?? "");
    }
    expect(remaining).toEqual(["2", "1", "0"]);

    const limited = await fetchApp("/api/v1/users/me", { headers });
    expect(limited.status).toBe(429);
    expect(await json(limited)).toMatchObject({ error: { code: "RATE_LIMITED" } });
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(limited.headers.get("RateLimit-Remaining")).toBe("0");
    expect(limited.headers.get("RateLimit-Reset")).toMatch(/^\d+$/);

    // Another user is not affected.
    const other = await fetchApp("/api/v1/users/me", { headers: { Authorization: `Bearer ${await mintToken(clerkId())}` } });
    expect(other.status).toBe(200);

    const recovered = await until(async () => (await fetchApp("/api/v1/users/me", { headers })).status === 200, 5_000);
    expect(recovered).toBe(true);
  });

  it("limits unauthenticated routes per client IP", async () => {
    const fetchApp = appWith({ RATE_LIMIT_IP: "2", RATE_LIMIT_WINDOW_SECONDS: "5" });
    const from = (ip: string) => ({ method: "POST", headers: { "CF-Connecting-IP": ip, "Content-Type": "application/json" }, body: "{}" });
    const ip = `203.0.113.${Math.floor(Math.random() * 250)}`;
    expect((await fetchApp("/api/webhooks/clerk", from(ip))).status).toBe(400);
    expect((await fetchApp("/api/webhooks/clerk", from(ip))).status).toBe(400);
    expect((await fetchApp("/api/webhooks/clerk", from(ip))).status).toBe(429);
    expect((await fetchApp("/api/webhooks/clerk", from("198.51.100.7"))).status).toBe(400);
  });

  it("keeps ordinary routes available while Redis is down (fails open)", async () => {
    const fetchApp = appWith({ RATE_LIMIT_USER: "3" });
    const headers = { Authorization: `Bearer ${await mintToken(clerkId())}` };
    expect((await fetchApp("/api/v1/users/me", { headers })).status).toBe(200);
    await controlRedis("stop");
    const started = Date.now();
    const response = await fetchApp("/api/v1/users/me", { headers });
    expect(response.status).toBe(200);
    expect(response.headers.get("RateLimit-Limit")).toBeNull();
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("refuses AI-spending routes while Redis is down (fails closed), and limits them tighter", async () => {
    const router = limitedRouter("ai");
    router.get("/spend", (c) => ok(c, { spent: true }));
    const bindings = { ...env, RATE_LIMIT_AI: "1" } as Bindings;
    const hit = async (userId: string) => {
      const ctx = createExecutionContext();
      const request = new Request("http://127.0.0.1/spend", { headers: { "x-test-user": userId } });
      const response = await router.fetch(request, bindings, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    };
    const spender = clerkId();
    expect((await hit(spender)).status).toBe(200);
    expect((await hit(spender)).status).toBe(429);
    await controlRedis("stop");
    const down = await hit(clerkId());
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ code: "SERVICE_UNAVAILABLE" });
  });

  it("lets a read with headroom run while it is counted, still answers its refusal, and never overlaps a write or a caller near the limit", async () => {
    const ran: string[] = [];
    const router = limitedRouter("user");
    router.get("/read", (c) => (ran.push("read"), ok(c, { read: true })));
    router.post("/write", (c) => (ran.push("write"), ok(c, { wrote: true })));
    const bindings = { ...env, RATE_LIMIT_USER: "8", RATE_LIMIT_WINDOW_SECONDS: "30" } as Bindings;
    const hit = async (userId: string, path: "/read" | "/write") => {
      const ctx = createExecutionContext();
      const request = new Request(`http://127.0.0.1${path}`, { method: path === "/read" ? "GET" : "POST", headers: { "x-test-user": userId } });
      const response = await router.fetch(request, bindings, ctx);
      await waitOnExecutionContext(ctx);
      return { status: response.status, remaining: response.headers.get("RateLimit-Remaining") };
    };
    const userId = clerkId();
    expect(await hit(userId, "/read")).toEqual({ status: 200, remaining: "7" });
    // Another instance of the Worker spends the rest of the window: this isolate still thinks 7 are left.
    const elsewhere = new Ratelimit({ redis: createRedis(testConfig(), { retries: 0 }), limiter: Ratelimit.slidingWindow(8, "30 s"), prefix: "rl:user" });
    for (let i = 0; i < 7; i++) expect((await elsewhere.limit(`user:${userId}`)).success).toBe(true);

    ran.length = 0;
    // With headroom last time, the read ran alongside its count; the count refused it, so its answer is the 429.
    expect(await hit(userId, "/read")).toEqual({ status: 429, remaining: "0" });
    expect(ran).toEqual(["read"]);
    // Now known to be at its limit: counted first, refused before the handler.
    expect(await hit(userId, "/read")).toEqual({ status: 429, remaining: "0" });
    // A write is always counted first.
    expect(await hit(userId, "/write")).toEqual({ status: 429, remaining: "0" });
    expect(ran).toEqual(["read"]);
  });
});
