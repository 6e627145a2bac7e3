import { Ratelimit } from "@upstash/ratelimit";
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "./app-env";
import type { AppConfig } from "./env";
import { AppError } from "./errors";
import { createRedis } from "./redis";

/**
 * `user`: authenticated routes, keyed by user. `ip`: unauthenticated routes, keyed by client IP.
 * `ai`: routes that spend AI money, keyed by user, stricter. `upgrade`: WebSocket upgrades and
 * socket tickets, keyed by client IP, counted before the request is authenticated.
 */
export type RateLimitTier = "user" | "ip" | "ai" | "upgrade";

const keyedByIp: Record<RateLimitTier, boolean> = { user: false, ip: true, ai: false, upgrade: true };

// A Redis that does not answer within this is treated as down (see `failClosed`).
const REDIS_TIMEOUT_MS = 1_000;

/**
 * When Redis is down, ordinary routes stay available (fail open: a brief loss of limits is
 * better than an outage), but routes that spend AI money refuse (fail closed: an unlimited
 * burst could cost real money).
 */
const failClosed: Record<RateLimitTier, boolean> = { user: false, ip: false, ai: true, upgrade: false };

const limiters = new WeakMap<AppConfig, Record<RateLimitTier, Ratelimit>>();

function limitersFor(config: AppConfig): Record<RateLimitTier, Ratelimit> {
  let cached = limiters.get(config);
  if (!cached) {
    const redis = createRedis(config, { retries: 0 });
    const make = (tier: RateLimitTier, perWindow: number) =>
      new Ratelimit({
        redis,
        limiter: Ratelimit.slidingWindow(perWindow, `${config.RATE_LIMIT_WINDOW_SECONDS} s`),
        prefix: `rl:${tier}`,
        timeout: REDIS_TIMEOUT_MS,
        analytics: false,
      });
    cached = {
      user: make("user", config.RATE_LIMIT_USER),
      ip: make("ip", config.RATE_LIMIT_IP),
      ai: make("ai", config.RATE_LIMIT_AI),
      upgrade: make("upgrade", config.RATE_LIMIT_WS_UPGRADE),
    };
    limiters.set(config, cached);
  }
  return cached;
}

export function clientIp(c: Context<AppEnv>): string {
  return (
    c.req.header("CF-Connecting-IP") ??
    c.req.header("X-Forwarded-For")?.split(",")[0]?.trim() ??
    "unknown"
  );
}

/** What a tier allowed in its window and what was left after an identifier's latest request, per isolate. */
const headroom = new Map<string, { limit: number; remaining: number }>();
const HEADROOM_ENTRIES = 10_000;

function rememberHeadroom(key: string, limit: number, remaining: number): void {
  headroom.delete(key);
  // Map keeps insertion order: the first key is the least recently seen.
  if (headroom.size >= HEADROOM_ENTRIES) headroom.delete(headroom.keys().next().value!);
  headroom.set(key, { limit, remaining });
}

function identifierOf(c: Context<AppEnv>, tier: RateLimitTier): string {
  return keyedByIp[tier] ? `ip:${clientIp(c)}` : `user:${c.var.user.id}`;
}

/**
 * Counts this request against `tier` and sets the RateLimit headers; throws 429 RATE_LIMITED
 * when the window is used up. For a route where only some requests spend (see `rateLimit`).
 */
export async function applyRateLimit(c: Context<AppEnv>, tier: RateLimitTier): Promise<void> {
  const identifier = identifierOf(c, tier);
  let outcome: Awaited<ReturnType<Ratelimit["limit"]>>;
  try {
    outcome = await limitersFor(c.var.config)[tier].limit(identifier);
  } catch (error) {
    outcome = { success: true, limit: 0, remaining: 0, reset: 0, pending: Promise.resolve(), reason: "timeout" };
    c.var.logger.warn("rate limiter unavailable", { tier, error });
  }
  if (outcome.reason === "timeout") {
    headroom.delete(`${tier}:${identifier}`);
    if (failClosed[tier]) throw new AppError("SERVICE_UNAVAILABLE", { message: "Rate limiting is unavailable; try again shortly" });
    c.var.logger.warn("rate limit skipped: Redis unavailable", { tier });
    return;
  }
  rememberHeadroom(`${tier}:${identifier}`, outcome.limit, outcome.success ? outcome.remaining : 0);
  c.executionCtx.waitUntil(outcome.pending);
  const resetSeconds = Math.max(0, Math.ceil((outcome.reset - Date.now()) / 1000));
  c.header("RateLimit-Limit", String(outcome.limit));
  c.header("RateLimit-Remaining", String(Math.max(0, outcome.remaining)));
  c.header("RateLimit-Reset", String(resetSeconds));
  if (!outcome.success) {
    c.header("Retry-After", String(Math.max(1, resetSeconds)));
    throw new AppError("RATE_LIMITED", { details: { retryAfterSeconds: Math.max(1, resetSeconds) } });
  }
}

/**
 * Whether this request may run while the limiter counts it: a plain read (GET or HEAD, not a
 * socket upgrade) by a caller that had over a quarter of its window left last time. A read
 * changes nothing, so a refused one only has its answer replaced by the 429; a caller near its
 * limit, or not seen yet by this isolate, waits for the count first, so a flood still sheds load.
 */
function mayOverlap(c: Context<AppEnv>, tier: RateLimitTier): boolean {
  if ((c.req.method !== "GET" && c.req.method !== "HEAD") || c.req.header("Upgrade") !== undefined || tier === "upgrade") return false;
  const seen = headroom.get(`${tier}:${identifierOf(c, tier)}`);
  return seen !== undefined && seen.remaining > seen.limit / 4;
}

export function rateLimit(tier: RateLimitTier): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!mayOverlap(c, tier)) {
      await applyRateLimit(c, tier);
      await next();
      return;
    }
    // The count and the read in parallel: the answer waits for the longer of the two, not both.
    const counted = applyRateLimit(c, tier).then(
      () => undefined,
      (error: unknown) => ({ error }),
    );
    await next();
    const refused = await counted;
    if (refused) throw refused.error;
  };
}
