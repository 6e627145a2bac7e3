import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../net.ts";
import { type RedisProcess, startRedisServer } from "./redis-server.ts";
import { type RedisRestAdapter, startRedisRestAdapter } from "./server.ts";

describe("Upstash REST adapter over redis-server", () => {
  const token = "test-token";
  const dataDir = mkdtempSync(join(tmpdir(), "redis-"));
  let redis: RedisProcess;
  let adapter: RedisRestAdapter;

  const send = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${adapter.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, ...headers },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    redis = await startRedisServer({ port: await freePort(), dataDir });
    adapter = await startRedisRestAdapter({ port: 0, redisUrl: `redis://127.0.0.1:${redis.port}`, token });
  });
  afterAll(async () => {
    await adapter.close();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("answers single commands and pipelines in Upstash's shapes", async () => {
    expect(await (await send("/", ["SET", "k", "v"])).json()).toEqual({ result: "OK" });
    expect(await (await send("/", ["INCRBY", "n", 2])).json()).toEqual({ result: 2 });
    const bad = await send("/", ["INCR", "k"]);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: expect.stringMatching(/not an integer/) });
    expect(await (await send("/pipeline", [["GET", "k"], ["INCR", "k"], ["GET", "missing"]])).json()).toEqual([
      { result: "v" },
      { error: expect.stringMatching(/not an integer/) },
      { result: null },
    ]);
  });

  it("base64-encodes every string of a reply when asked, except a bare top-level OK", async () => {
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const headers = { "upstash-encoding": "base64" };
    await send("/", ["DEL", "list"]);
    await send("/", ["RPUSH", "list", "OK", "PONG"]);
    expect(await (await send("/", ["SET", "x", "1"], headers)).json()).toEqual({ result: "OK" });
    expect(await (await send("/", ["LRANGE", "list", 0, -1], headers)).json()).toEqual({ result: [b64("OK"), b64("PONG")] });
    expect(await (await send("/multi-exec", [["GET", "x"], ["INCR", "x"]], headers)).json()).toEqual([
      { result: b64("1") },
      { result: 2 },
    ]);
  });

  it("refuses a missing or wrong token and connection-bound commands", async () => {
    const noAuth = await fetch(adapter.url, { method: "POST", body: JSON.stringify(["PING"]) });
    expect(noAuth.status).toBe(401);
    expect((await send("/", ["PING"], { authorization: "Bearer wrong" })).status).toBe(401);
    expect(await (await send("/", ["SUBSCRIBE", "ch"])).json()).toEqual({ error: expect.stringMatching(/not allowed/) });
    expect((await send("/nope", ["PING"])).status).toBe(404);
  });

  it("fails fast while Redis is down and recovers, with the data, when it is back", async () => {
    await send("/", ["SET", "durable", "yes"]);
    await redis.stop();
    const started = Date.now();
    const down = await send("/", ["GET", "durable"]);
    expect(down.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(1_000);

    await redis.start();
    let answer: unknown;
    for (let i = 0; i < 50 && answer === undefined; i++) {
      const response = await send("/", ["GET", "durable"]);
      if (response.status === 200) answer = await response.json();
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(answer).toEqual({ result: "yes" });
  });

  it("names a busy port instead of hanging", async () => {
    const port = Number(new URL(adapter.url).port);
    await expect(
      startRedisRestAdapter({ port, redisUrl: `redis://127.0.0.1:${redis.port}`, token }),
    ).rejects.toThrow(`port ${port} (redis-rest) is already in use`);
    await expect(startRedisServer({ port: redis.port })).rejects.toThrow(`port ${redis.port} (redis) is already in use`);
  });
});
