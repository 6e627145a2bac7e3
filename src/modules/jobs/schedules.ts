import type { AppConfig } from "../../lib/env";
import { type JobName, jobUrl, qstashClient } from "../../lib/jobs";

/** The jobs QStash runs on a clock, as code. Stable ids make syncing idempotent. */
export const schedules: ReadonlyArray<{ id: string; job: JobName; cron: string }> = [
  // Runs that died and were never taken over end `failed`, so no session stays busy for long.
  { id: "charisma-sweep-suggestions", job: "sweep-suggestions", cron: "*/5 * * * *" },
  { id: "charisma-sweep-ocr", job: "sweep-ocr", cron: "*/5 * * * *" },
];

/**
 * Creates or updates every schedule above and deletes this Worker's schedules that are no
 * longer listed (same id: QStash updates it in place). Returns what it did, for the log.
 */
export async function syncSchedules(config: Pick<AppConfig, "QSTASH_URL" | "QSTASH_TOKEN" | "PUBLIC_BASE_URL" | "JOB_RETRIES">) {
  const client = qstashClient(config);
  const wanted = new Set(schedules.map((schedule) => schedule.id));
  for (const schedule of schedules) {
    await client.schedules.create({
      scheduleId: schedule.id,
      destination: jobUrl(config, schedule.job),
      cron: schedule.cron,
      body: "{}",
      headers: { "Content-Type": "application/json" },
      retries: config.JOB_RETRIES,
    });
  }
  const ours = new URL("/jobs/", config.PUBLIC_BASE_URL).toString();
  const removed: string[] = [];
  for (const existing of await client.schedules.list()) {
    if (existing.destination.startsWith(ours) && !wanted.has(existing.scheduleId)) {
      await client.schedules.delete(existing.scheduleId);
      removed.push(existing.scheduleId);
    }
  }
  return { synced: [...wanted], removed };
}
