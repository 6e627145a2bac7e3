import type { AppConfig } from "../../lib/env";
import { jobUrl, qstashClient } from "../../lib/jobs";
import type { JobDefinition } from "./definition";

export type Schedule = { id: string; job: string; cron: string };

/** The schedules the given jobs declare. */
export function schedulesOf(jobs: ReadonlyArray<JobDefinition>): Schedule[] {
  return jobs.flatMap((job) => (job.schedule ? [{ ...job.schedule, job: job.name }] : []));
}

/**
 * Creates or updates every schedule given and deletes this Worker's schedules that are no
 * longer listed (same id: QStash updates it in place). Returns what it did, for the log.
 */
export async function syncSchedules(
  config: Pick<AppConfig, "QSTASH_URL" | "QSTASH_TOKEN" | "PUBLIC_BASE_URL" | "JOB_RETRIES">,
  schedules: ReadonlyArray<Schedule>,
) {
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
