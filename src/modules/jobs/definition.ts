import { z } from "zod";
import type { Database } from "../../lib/db";
import { instantSchema } from "../../lib/input";
import type { AppConfig, Bindings } from "../../lib/env";
import type { PublishJob, PublishJobBatch } from "../../lib/jobs";
import type { Logger } from "../../lib/logger";
import type { RoomKind } from "../../realtime/kinds";
import type { Broadcast } from "../../realtime/rooms";

/** What a job handler gets: infrastructure only; the payload comes separately, validated. */
export type JobContext = {
  config: AppConfig;
  db: Database;
  env: Bindings;
  logger: Logger;
  broadcast: Broadcast;
  /** Every room kind the features declare (the account purge forgets each of a user's rooms). */
  rooms: ReadonlyArray<RoomKind>;
  publishJob: PublishJob;
  /** For a fan-out: many deliveries of one job, in batch requests of at most 100. */
  publishJobBatch: PublishJobBatch;
  /** The QStash message id: the same on every delivery of one message. */
  messageId: string;
  /** 0 on the first delivery, then the retry number. */
  retried: number;
};

/**
 * The optional `at` of a job that runs on a clock (fan-outs, sweeps, the purge): it runs as if
 * it were that instant, so `npm run jobs:run` and tests can let days pass.
 */
export const jobInstantSchema = instantSchema.optional();

/** The instant a clock-driven job runs as: `at`, or now. */
export function jobInstant(at: string | undefined): Date {
  return at === undefined ? new Date() : new Date(at);
}

export type JobFailure = { status: number; retried: number; sourceMessageId: string };

/**
 * One job, declared by the feature that owns it: the name QStash delivers it under
 * (`POST /jobs/<name>`), its payload schema, its work, what to do when QStash gives up on it,
 * and for a job that runs on a clock, its schedule (kept in QStash by `npm run schedules:sync`).
 */
export type JobDefinition<P extends Record<string, unknown> = Record<string, unknown>> = {
  name: string;
  payload: z.ZodType<P>;
  run(ctx: JobContext, payload: P): Promise<Record<string, unknown> | undefined>;
  fail(ctx: JobContext, payload: P, failure: JobFailure): Promise<void>;
  /** A stable id makes syncing idempotent: the same id is updated in place. */
  schedule?: { id: string; cron: string };
};
