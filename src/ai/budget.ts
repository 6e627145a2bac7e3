import type { Redis } from "@upstash/redis/cloudflare";
import { and, eq, gte, sql } from "drizzle-orm";
import { aiCalls } from "../db/schema";
import type { Database } from "../lib/db";
import { AppError } from "../lib/errors";
import type { Logger } from "../lib/logger";

export interface BudgetLimits {
  userDailyUsd: number;
  totalDailyUsd: number;
}

const TTL_SECONDS = 2 * 86_400;

function utcDay(now: Date): { key: string; start: Date } {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  return { key: start.toISOString().slice(0, 10), start };
}

/**
 * Daily AI spend per user and in total. Redis counters answer the hot path; a missing counter
 * (new day, evicted, Redis restarted) is rebuilt from `ai_calls`, which stays the truth. If
 * Redis is down, the check reads Postgres directly rather than letting spend run unchecked.
 */
export function createBudget(deps: { redis: Redis; db: Database; limits: BudgetLimits; logger: Logger; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  const keys = (userId: string, day: string) => ({ user: `ai:spend:${day}:user:${userId}`, total: `ai:spend:${day}:total` });

  async function spentInPostgres(userId: string | null, start: Date): Promise<number> {
    const where = userId ? and(eq(aiCalls.userId, userId), gte(aiCalls.createdAt, start)) : gte(aiCalls.createdAt, start);
    const [row] = await deps.db.select({ spent: sql<string>`coalesce(sum(${aiCalls.costUsd}), 0)` }).from(aiCalls).where(where);
    return Number(row?.spent ?? 0);
  }

  /** Today's spend; `user` is 0 for calls on no one's behalf (userId null). */
  async function spent(userId: string | null): Promise<{ user: number; total: number }> {
    const day = utcDay(now());
    const key = keys(userId ?? "none", day.key);
    try {
      const [user, total] = await deps.redis.mget<[string | null, string | null]>(key.user, key.total);
      const rebuild = async (value: string | null, redisKey: string, owner: string | null) => {
        if (value !== null) return Number(value);
        const fromPostgres = await spentInPostgres(owner, day.start);
        // NX: a concurrent rebuild or increment that got there first wins.
        await deps.redis.set(redisKey, fromPostgres.toFixed(6), { nx: true, ex: TTL_SECONDS });
        return fromPostgres;
      };
      return { user: userId ? await rebuild(user, key.user, userId) : 0, total: await rebuild(total, key.total, null) };
    } catch (error) {
      deps.logger.warn("AI spend counters unreadable; reading Postgres", { error });
      return { user: userId ? await spentInPostgres(userId, day.start) : 0, total: await spentInPostgres(null, day.start) };
    }
  }

  return {
    spent,
    /** Throws 429 AI_BUDGET_EXCEEDED before any upstream request is made (userId null: the total only). */
    async assertWithinBudget(userId: string | null): Promise<void> {
      const current = await spent(userId);
      if (current.user >= deps.limits.userDailyUsd) {
        throw new AppError("AI_BUDGET_EXCEEDED", { message: "Your daily AI budget is used up; it resets at midnight UTC" });
      }
      if (current.total >= deps.limits.totalDailyUsd) {
        throw new AppError("AI_BUDGET_EXCEEDED", { message: "The service's daily AI budget is used up; try again later" });
      }
    },
    /** Adds a recorded call's cost to today's counters (only if they exist: else they rebuild from Postgres). */
    async add(userId: string | null, costUsd: number): Promise<void> {
      if (costUsd <= 0) return;
      const key = keys(userId ?? "none", utcDay(now()).key);
      const targets = userId ? [key.user, key.total] : [key.total];
      try {
        const pipeline = deps.redis.pipeline();
        for (const target of targets) {
          pipeline.eval(
            "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]) end return nil",
            [target],
            [costUsd.toFixed(6)],
          );
        }
        await pipeline.exec();
      } catch (error) {
        // Postgres already has the call; the counter rebuilds from it when next read.
        deps.logger.warn("AI spend counter not updated", { error });
      }
    },
  };
}

export type Budget = ReturnType<typeof createBudget>;
