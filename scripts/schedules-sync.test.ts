import { Client } from "@upstash/qstash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startQStashStandIn } from "../local/qstash/server.ts";
import { features, jobsOf } from "../src/features";
import { schedulesOf, syncSchedules } from "../src/modules/jobs/schedules";

const schedules = schedulesOf(jobsOf(features));

const credentials = { token: "sync-test-token", currentSigningKey: "sig_current", nextSigningKey: "sig_next" };
const config = { PUBLIC_BASE_URL: "https://api.charisma.example", JOB_RETRIES: 3 };

describe("schedules:sync", () => {
  let qstash: Awaited<ReturnType<typeof startQStashStandIn>>;
  let client: Client;
  beforeAll(async () => {
    qstash = await startQStashStandIn({ port: 0, ...credentials, delivery: "pull", log: () => {} });
    client = new Client({ baseUrl: qstash.url, token: credentials.token, enableTelemetry: false });
  });
  afterAll(() => qstash.close());

  it("leaves exactly one schedule per entry however often it runs, and removes ours that are no longer listed", async () => {
    // The features declare these; a job that lost its schedule would let dead runs stay busy.
    expect(schedules.map((s) => s.job).sort()).toEqual(["daily-tips", "purge-users", "push-receipts", "screenshot-retention", "sweep-ocr", "sweep-openers", "sweep-suggestions"]);
    const target = { ...config, QSTASH_URL: qstash.url, QSTASH_TOKEN: credentials.token };
    await client.schedules.create({ scheduleId: "charisma-retired-job", destination: `${config.PUBLIC_BASE_URL}/jobs/retired`, cron: "0 * * * *" });
    await client.schedules.create({ scheduleId: "someone-elses", destination: "https://elsewhere.example/hook", cron: "0 * * * *" });

    expect(await syncSchedules(target, schedules)).toEqual({ synced: schedules.map((s) => s.id), removed: ["charisma-retired-job"] });
    expect(await syncSchedules(target, schedules)).toEqual({ synced: schedules.map((s) => s.id), removed: [] });

    const listed = await client.schedules.list();
    expect(listed.map((s) => s.scheduleId).sort()).toEqual([...schedules.map((s) => s.id), "someone-elses"].sort());
    for (const schedule of schedules) {
      expect(listed.find((s) => s.scheduleId === schedule.id)).toMatchObject({
        cron: schedule.cron,
        destination: `${config.PUBLIC_BASE_URL}/jobs/${schedule.job}`,
        retries: 3,
      });
    }
  });
});
