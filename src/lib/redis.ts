import { Redis } from "@upstash/redis/cloudflare";
import type { AppConfig } from "./env";

type RedisConfig = Pick<AppConfig, "UPSTASH_REDIS_REST_URL" | "UPSTASH_REDIS_REST_TOKEN">;

/**
 * Upstash's REST client. `retries` is the SDK's own retry count with exponential backoff;
 * callers on a latency budget (health checks) pass 0 and fail fast instead.
 */
export function createRedis(config: RedisConfig, options: { retries?: number } = {}) {
  return new Redis({
    url: config.UPSTASH_REDIS_REST_URL,
    token: config.UPSTASH_REDIS_REST_TOKEN,
    enableTelemetry: false,
    retry: options.retries === 0 ? false : { retries: options.retries ?? 3 },
  });
}

/**
 * One bounded step of deleting every key that matches `pattern`: up to `rounds` SCAN calls from
 * `cursor`, deleting what each finds. Answers the cursor to go on from ("0": the scan is complete)
 * and the keys deleted. SCAN walks the whole keyspace, so a caller pages through it in steps.
 */
export async function deleteMatchingKeys(redis: Redis, pattern: string, options: { cursor?: string; rounds?: number; count?: number } = {}) {
  let cursor = options.cursor ?? "0";
  let deleted = 0;
  for (let round = 0; round < (options.rounds ?? 10); round++) {
    const [next, keys] = await redis.scan(cursor, { match: pattern, count: options.count ?? 1_000 });
    if (keys.length > 0) deleted += await redis.del(...keys);
    cursor = String(next);
    if (cursor === "0") break;
  }
  return { cursor, deleted };
}
