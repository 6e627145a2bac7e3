import { aiCalls } from "../db/schema";
import type { Database } from "../lib/db";
import type { Budget } from "./budget";
import type { AiCallRecord } from "./strategy";

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
