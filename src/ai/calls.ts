import { aiCalls } from "../db/schema";
import type { Database } from "../lib/db";
import type { AiCallRecord } from "./strategy";

/** Writes one `ai_calls` row per attempt: successes, failures, timeouts and cancellations alike. */
export function createAiCallRecorder(db: Database) {
  return async (call: AiCallRecord): Promise<void> => {
    await db.insert(aiCalls).values({ ...call, costUsd: call.costUsd.toFixed(6) });
  };
}
