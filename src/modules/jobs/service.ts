import { and, eq, ne, sql } from "drizzle-orm";
import { jobRuns } from "../../db/schema";
import type { Database } from "../../lib/db";
import type { ErrorCode } from "../../lib/errors";

/**
 * Records a delivery of a QStash message. Answers `done` when an earlier delivery of the same
 * message already completed the job (QStash delivers at least once), else counts the attempt.
 */
export async function beginJobRun(db: Database, messageId: string, jobName: string): Promise<"run" | "done"> {
  const [row] = await db
    .insert(jobRuns)
    .values({ messageId, jobName })
    .onConflictDoUpdate({
      target: jobRuns.messageId,
      set: { attempts: sql`${jobRuns.attempts} + 1`, status: "running", lastError: null, updatedAt: new Date() },
      setWhere: ne(jobRuns.status, "succeeded"),
    })
    .returning({ status: jobRuns.status });
  return row ? "run" : "done";
}

export async function finishJobRun(db: Database, messageId: string, outcome: { ok: true } | { ok: false; error: ErrorCode }) {
  await db
    .update(jobRuns)
    .set(outcome.ok ? { status: "succeeded", completedAt: new Date() } : { status: "failed", lastError: outcome.error })
    .where(and(eq(jobRuns.messageId, messageId), ne(jobRuns.status, "succeeded")));
}
