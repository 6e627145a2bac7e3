import { env } from "cloudflare:test";
import { Ratelimit } from "@upstash/ratelimit";
import { beforeEach, describe, expect, it } from "vitest";
import { testConfig } from "../../test/helpers";
import { createRedis } from "./redis";

describe("@upstash/redis through the local Upstash REST adapter", () => {
  const redis = createRedis(testConfig());
  const prefix = `test:${crypto.randomUUID()}:`;
  const key = (name: string) => prefix + name;

  beforeEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  });

  it("round-trips single commands, including values that look like base64 or JSON", async () => {
    expect(await redis.ping()).toBe("PONG");
    expect(await redis.set(key("plain"), "hello")).toBe("OK");
    expect(await redis.get(key("plain"))).toBe("hello");
    await redis.set(key("b64"), "aGVsbG8=");
    expect(await redis.get(key("b64"))).toBe("aGVsbG8=");
    await redis.set(key("json"), { tone: "playful", count: 3, tags: ["a", "ü"] });
    expect(await redis.get(key("json"))).toEqual({ tone: "playful", count: 3, tags: ["a", "ü"] });
    expect(await redis.incrby(key("counter"), 5)).toBe(5);
    expect(await redis.expire(key("counter"), 60)).toBe(1);
    expect(await redis.ttl(key("counter"))).toBeGreaterThan(50);
    await redis.hset(key("hash"), { a: "1", b: "two" });
    expect(await redis.hgetall(key("hash"))).toEqual({ a: 1, b: "two" });
    expect(await redis.get(key("missing"))).toBeNull();
  });

  it("round-trips a pipeline, answering each command in order with per-command errors", async () => {
    const results = await redis
      .pipeline()
      .set(key("p1"), "one")
      .incr(key("p2"))
      .zadd(key("z"), { score: 2, member: "b" }, { score: 1, member: "a" })
      .zrange(key("z"), 0, -1, { withScores: true })
      .get(key("p1"))
      .exec();
    expect(results).toEqual(["OK", 1, 2, ["a", 1, "b", 2], "one"]);

    await redis.set(key("not-a-number"), "x");
    const failing = redis.pipeline().incr(key("not-a-number")).get(key("p1"));
    await expect(failing.exec()).rejects.toThrow(/not an integer/);
    const kept = await redis.pipeline().incr(key("not-a-number")).get(key("p1")).exec({ keepErrors: true });
    expect(kept[0]).toMatchObject({ error: expect.stringMatching(/not an integer/) });
    expect(kept[1]).toMatchObject({ result: "one" });
  });

  it("runs multi-exec atomically", async () => {
    const results = await redis
      .multi()
      .set(key("m"), "1")
      .incr(key("m"))
      .sadd(key("s"), "x", "y")
      .smembers(key("s"))
      .exec();
    expect(results.slice(0, 3)).toEqual(["OK", 2, 2]);
    expect((results[3] as string[]).sort()).toEqual(["x", "y"]);
    expect(await redis.get(key("m"))).toBe(2);
  });

  it("runs EVAL and EVALSHA, answering in the client's script SHA", async () => {
    const script = "return {KEYS[1], ARGV[1], redis.call('INCRBY', KEYS[1], ARGV[1])}";
    // The SDK deserializes numeric-looking strings: ARGV "4" comes back as 4.
    expect(await redis.eval(script, [key("lua")], ["4"])).toEqual([key("lua"), 4, 4]);
    const sha = await redis.scriptLoad(script);
    const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(script));
    expect(sha).toBe([...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join(""));
    expect(await redis.evalsha(sha, [key("lua")], ["1"])).toEqual([key("lua"), 1, 5]);
  });

  it("runs @upstash/ratelimit's limiters unchanged (their scripts need the adapter's shebang rewrite)", async () => {
    const limiters = {
      sliding: Ratelimit.slidingWindow(3, "10 s"),
      fixed: Ratelimit.fixedWindow(3, "10 s"),
      bucket: Ratelimit.tokenBucket(3, "10 s", 3),
    };
    for (const [name, limiter] of Object.entries(limiters)) {
      const ratelimit = new Ratelimit({ redis, limiter, prefix: key(`rl:${name}`) });
      const outcomes = [];
      for (let i = 0; i < 4; i++) {
        const { success, remaining, limit, reset } = await ratelimit.limit("user_1");
        expect(limit, name).toBe(3);
        expect(reset, name).toBeGreaterThan(Date.now() - 1_000);
        outcomes.push([success, remaining]);
      }
      expect(outcomes, name).toEqual([
        [true, 2],
        [true, 1],
        [true, 0],
        [false, 0],
      ]);
      // Another identifier has its own budget.
      expect((await ratelimit.limit("user_2")).success, name).toBe(true);
    }
  });

  it("rejects a client with the wrong token", async () => {
    const intruder = createRedis({ ...testConfig(), UPSTASH_REDIS_REST_TOKEN: "wrong" }, { retries: 0 });
    await expect(intruder.get(key("plain"))).rejects.toThrow();
    expect(env.UPSTASH_REDIS_REST_TOKEN).not.toBe("wrong");
  });
});
