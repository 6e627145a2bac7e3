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
