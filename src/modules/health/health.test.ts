import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterAll, describe, expect, it } from "vitest";
import { call, controlRedis } from "../../../test/helpers";
import { createApp } from "../../app";
import type { Bindings } from "../../lib/env";

type Envelope = {
  success: boolean;
  data?: Record<string, unknown> & { checks?: Record<string, { ok: boolean }> };
  error?: { code: string; message: string; details?: { checks?: Record<string, { ok: boolean; variables?: string[] }> } };
};

/** Runs the app against a modified env, as a deployment with that configuration would. */
async function callWith(overrides: Partial<Record<string, string>>, path: string, headers: Record<string, string> = {}) {
  const app = createApp();
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(`http://127.0.0.1${path}`, { headers }), { ...env, ...overrides } as Bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

async function pollReady(expected: number, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await call("/api/v1/health/ready");
    if (response.status === expected || Date.now() > deadline) return response;
    await response.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("GET /api/v1/health", () => {
  it("answers liveness in the envelope", async () => {
    const response = await call("/api/v1/health");
    expect(response.status).toBe(200);
    const body = (await response.json()) as Envelope;
    expect(body.success).toBe(true);
    expect(body.data).toMatchObject({ status: "ok", environment: "test", version: "local" });
    expect(Date.parse(String(body.data?.timestamp))).not.toBeNaN();
  });

  it("echoes a caller's X-Request-Id and generates one otherwise", async () => {
    const echoed = await call("/api/v1/health", { headers: { "X-Request-Id": "req-abc-123" } });
    expect(echoed.headers.get("X-Request-Id")).toBe("req-abc-123");
    const generated = await call("/api/v1/health");
    expect(generated.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers an unknown route with 404 NOT_FOUND in the envelope", async () => {
    const response = await call("/api/v1/nope");
    expect(response.status).toBe(404);
    const body = (await response.json()) as Envelope;
    expect(body).toMatchObject({ success: false, error: { code: "NOT_FOUND" } });
  });
});

describe("GET /api/v1/health/ready", () => {
  afterAll(async () => {
    await controlRedis("start");
  });

  it("is ready when Postgres, Redis and the job queue configuration are all good", async () => {
    const response = await call("/api/v1/health/ready");
    const body = (await response.json()) as Envelope;
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.data?.status).toBe("ready");
    expect(body.data?.checks).toMatchObject({
      config: { ok: true },
      database: { ok: true },
      redis: { ok: true },
      jobs: { ok: true },
    });
    expect(response.headers.get("Cache-Control")).toBe("no-store");
  });

  it("answers 503 naming Redis while Redis is stopped, and 200 once it is back", async () => {
    await controlRedis("stop");
    const started = Date.now();
    const down = await call("/api/v1/health/ready");
    const elapsed = Date.now() - started;
    const body = (await down.json()) as Envelope;
    expect(down.status).toBe(503);
    expect(body.error?.code).toBe("SERVICE_UNAVAILABLE");
    expect(body.error?.message).toBe("Not ready: redis");
    expect(body.error?.details?.checks).toMatchObject({ redis: { ok: false }, database: { ok: true } });
    // Bounded by the check's timeout, not by the SDK's retry schedule.
    expect(elapsed).toBeLessThan(5_000);

    await controlRedis("start");
    const back = await pollReady(200, 10_000);
    expect(back.status).toBe(200);
  });

  it("answers 503 naming the database when Postgres is unreachable", async () => {
    // Another database host whose endpoint is a closed port: the driver's request fails at once.
    const response = await callWith(
      { DATABASE_URL: "postgresql://postgres:postgres@127.0.0.2:5999/postgres", NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql" },
      "/api/v1/health/ready",
    );
    const body = (await response.json()) as Envelope;
    expect(response.status).toBe(503);
    expect(body.error?.message).toBe("Not ready: database");
    expect(body.error?.details?.checks?.redis?.ok).toBe(true);
  });

  it("answers 503 CONFIG_INVALID naming neither the invalid variables nor their values", async () => {
    const secretLookingValue = "not-a-url-but-maybe-a-secret";
    const response = await callWith(
      { DATABASE_URL: secretLookingValue, UPSTASH_REDIS_REST_TOKEN: "" },
      "/api/v1/health/ready",
    );
    const text = await response.text();
    expect(response.status).toBe(503);
    const body = JSON.parse(text) as Envelope;
    expect(body.error?.code).toBe("CONFIG_INVALID");
    expect(body.error?.details?.checks?.config).toEqual({ ok: false, error: "invalid configuration" });
    expect(text).not.toContain(secretLookingValue);
    expect(text).not.toContain("DATABASE_URL");
    expect(text).not.toContain("UPSTASH_REDIS_REST_TOKEN");

    // Liveness still answers: the isolate runs even when its configuration does not.
    const live = await callWith({ DATABASE_URL: secretLookingValue }, "/api/v1/health");
    expect(live.status).toBe(200);
  });

  it("answers 503 naming the job queue (not its variables) when some are missing", async () => {
    const response = await callWith({ QSTASH_TOKEN: "", QSTASH_NEXT_SIGNING_KEY: "" }, "/api/v1/health/ready");
    const text = await response.text();
    const body = JSON.parse(text) as Envelope;
    expect(response.status).toBe(503);
    expect(body.error?.message).toBe("Not ready: jobs");
    expect(body.error?.details?.checks?.jobs).toEqual({ ok: false, error: "job queue is not configured" });
    expect(text).not.toContain("QSTASH");
  });

  it("limits readiness per IP like any public route", async () => {
    const ip = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    const ask = () => callWith({ RATE_LIMIT_IP: "3" }, "/api/v1/health/ready", { "CF-Connecting-IP": ip });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await ask()).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await ask();
    expect(refused.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(((await refused.json()) as Envelope).error?.code).toBe("RATE_LIMITED");
  });
});
