import { createHash } from "node:crypto";
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

  it("runs @upstash/ratelimit-style scripts: drops the shebang flag Redis 7.0 rejects, keeps the client's SHA", async () => {
    const script = "#!lua flags=allow-key-locking\nreturn redis.call('INCR', KEYS[1])";
    const sha = createHash("sha1").update(script).digest("hex");
    expect(await (await send("/pipeline", [["EVALSHA", sha, 1, "lua"]])).json()).toEqual([
      { error: expect.stringMatching(/^NOSCRIPT/) },
    ]);
    expect(await (await send("/pipeline", [["EVAL", script, 1, "lua"]])).json()).toEqual([{ result: 1 }]);
    expect(await (await send("/pipeline", [["EVALSHA", sha, 1, "lua"]])).json()).toEqual([{ result: 2 }]);
    expect(await (await send("/", ["SCRIPT", "LOAD", script])).json()).toEqual({ result: sha });
    expect(await (await send("/", ["SCRIPT", "EXISTS", sha])).json()).toEqual({ result: [1] });
  });

  it("discards a transaction with a command Redis would not queue, and reports per-command runtime errors", async () => {
    const discarded = await send("/multi-exec", [["SET", "tx", "1"], ["SET", "tx"]]);
    expect(discarded.status).toBe(400);
    expect(await discarded.json()).toEqual({ error: expect.stringMatching(/wrong number of arguments/) });
    expect(await (await send("/", ["EXISTS", "tx"])).json()).toEqual({ result: 0 });
    expect(await (await send("/multi-exec", [["SET", "tx", "a"], ["INCR", "tx"]])).json()).toEqual([
      { result: "OK" },
      { error: expect.stringMatching(/not an integer/) },
    ]);
  });

  it("gives a blocking command its own connection, so other requests are not stalled behind it", async () => {
    const blocked = send("/", ["BLPOP", "empty-list", 0.5]);
    const started = Date.now();
    expect(await (await send("/", ["PING"])).json()).toEqual({ result: "PONG" });
    expect(Date.now() - started).toBeLessThan(500);
    expect(await (await blocked).json()).toEqual({ result: null });
  });

  it("answers 405 to other methods and 413 to oversized bodies", async () => {
    expect((await fetch(adapter.url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(405);
    expect((await send("/", ["SET", "big", "x".repeat(10 * 1024 * 1024 + 1)])).status).toBe(413);
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
