import { and, eq, gte, sql } from "drizzle-orm";
import { aiCalls } from "../db/schema";
import type { Database } from "../lib/db";
import type { Budget } from "./budget";
import type { AiCallRecord } from "./strategy";
import type { AiCallKind } from "./types";

/**
 * Writes one `ai_calls` row per attempt — successes, failures, timeouts and cancellations alike —
 * and adds its cost to the day's budget counters.
 */
export function createAiCallRecorder(db: Database, budget?: Budget) {
  return async (call: AiCallRecord): Promise<void> => {
    await db.insert(aiCalls).values({ ...call, costUsd: call.costUsd.toFixed(6) });
    await budget?.add(call.userId, call.costUsd);
  };
}

/** A user's calls since `since`, per kind: how many and what they cost (the recorded rows, estimates included). */
export async function spendByKind(db: Database, userId: string, since: Date): Promise<Array<{ kind: AiCallKind; calls: number; costUsd: number }>> {
  const rows = await db
    .select({ kind: aiCalls.kind, calls: sql<number>`count(*)::int`, costUsd: sql<string>`coalesce(sum(${aiCalls.costUsd}), 0)` })
    .from(aiCalls)
    .where(and(eq(aiCalls.userId, userId), gte(aiCalls.createdAt, since)))
    .groupBy(aiCalls.kind);
  return rows.map((row) => ({ ...row, costUsd: Number(row.costUsd) }));
}
