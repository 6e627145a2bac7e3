import type { Redis } from "@upstash/redis/cloudflare";
import { z } from "zod";
import type { Database } from "../../lib/db";
import { createRedis, deleteMatchingKeys } from "../../lib/redis";
import type { RoomKind } from "../../realtime/kinds";
import type { RoomAddress } from "../../realtime/protocol";
import { forgetRoom } from "../../realtime/rooms";
import { type JobContext, type JobDefinition, jobInstant, jobInstantSchema } from "../jobs/definition";
import { deleteOpenerGenerationsOf } from "../openers/service";
import { deleteSessionsOf } from "../sessions/service";
import { deleteStoredObjectsOf } from "../uploads/service";
import { claimAccountsForPurge, deletePurgedAccount, isBeingPurged } from "../users/service";

/** Accounts per fan-out delivery; a full page hands the rest to a delivery of its own. */
const FAN_OUT_PAGE = 100;
/** Rooms forgotten at once; R2 objects and rows deleted per statement. */
const ROOM_PAGE = 50;
const OBJECT_PAGE = 1_000;
const ROW_PAGE = 100;
/** Pages one delivery works through before it hands the rest to the next delivery. */
const PAGES_PER_DELIVERY = 20;

/**
 * Where an account's purge stands. The stores go in this order, so that what a later step needs
 * is still there: the rooms (found through the rows), the R2 objects, the Redis keys, the rows.
 */
const purgeStateSchema = z.discriminatedUnion("step", [
  z.object({ step: z.literal("rooms"), kind: z.string().min(1).max(32), afterId: z.string().min(1).max(64).optional() }).strict(),
  z.object({ step: z.literal("objects") }).strict(),
  z.object({ step: z.literal("keys"), cursor: z.string().regex(/^\d{1,20}$/).optional() }).strict(),
  z.object({ step: z.literal("rows") }).strict(),
]);
export type PurgeState = z.infer<typeof purgeStateSchema>;

export type PurgeDeps = {
  db: Database;
  bucket: Pick<R2Bucket, "list" | "delete">;
  redis: Redis;
  rooms: ReadonlyArray<RoomKind>;
  forget(room: RoomAddress): Promise<unknown>;
};

export type PurgeCounts = { rooms: number; objects: number; redisEntries: number; rows: number };

const firstState = (rooms: ReadonlyArray<RoomKind>): PurgeState => (rooms[0] ? { step: "rooms", kind: rooms[0].name } : { step: "objects" });

/**
 * One bounded page of an account's purge, from `state`: answers the state to go on from, or
 * `done` once the account row is gone. Every page can run twice (a crash, a redelivery) with the
 * same result: it deletes what is still there.
 */
export async function purgePage(deps: PurgeDeps, userId: string, state: PurgeState, counts: PurgeCounts): Promise<PurgeState | "done"> {
  switch (state.step) {
    case "rooms": {
      const index = deps.rooms.findIndex((kind) => kind.name === state.kind);
      const kind = deps.rooms[index];
      if (!kind) return { step: "objects" };
      const ids = await kind.roomsOf(deps.db, userId, { afterId: state.afterId, limit: ROOM_PAGE });
      await Promise.all(ids.map((id) => deps.forget({ kind: kind.name, id })));
      counts.rooms += ids.length;
      if (ids.length === ROOM_PAGE) return { step: "rooms", kind: kind.name, afterId: ids.at(-1)! };
      const next = deps.rooms[index + 1];
      return next ? { step: "rooms", kind: next.name } : { step: "objects" };
    }
    case "objects": {
      const deleted = await deleteStoredObjectsOf(deps.bucket, userId, OBJECT_PAGE);
      counts.objects += deleted;
      return deleted === OBJECT_PAGE ? state : { step: "keys" };
    }
    case "keys": {
      // Every per-user Redis key holds the user's id (caches, budgets, rate limits, sockets).
      const { cursor, deleted } = await deleteMatchingKeys(deps.redis, `*${userId}*`, { cursor: state.cursor });
      counts.redisEntries += deleted;
      return cursor === "0" ? { step: "rows" } : { step: "keys", cursor };
    }
    case "rows": {
      const sessions = await deleteSessionsOf(deps.db, userId, ROW_PAGE);
      counts.rows += sessions;
      if (sessions === ROW_PAGE) return state;
      const generations = await deleteOpenerGenerationsOf(deps.db, userId, ROW_PAGE);
      counts.rows += generations;
      if (generations === ROW_PAGE) return state;
      if (await deletePurgedAccount(deps.db, userId)) counts.rows += 1;
      return "done";
    }
  }
}

/**
 * Up to `pages` pages of one account's purge. Answers where it stopped (`done` when nothing is
 * left) and what it deleted. An account that is not being purged (restored, or already gone) is
 * left alone.
 */
export async function purgeAccount(deps: PurgeDeps, userId: string, from: PurgeState | undefined, pages = PAGES_PER_DELIVERY) {
  const counts: PurgeCounts = { rooms: 0, objects: 0, redisEntries: 0, rows: 0 };
  if (!(await isBeingPurged(deps.db, userId))) return { state: "done" as const, counts, found: false };
  let state: PurgeState | "done" = from ?? firstState(deps.rooms);
  for (let page = 0; page < pages && state !== "done"; page++) state = await purgePage(deps, userId, state, counts);
  return { state, counts, found: true };
}

function purgeDeps(ctx: JobContext): PurgeDeps {
  return {
    db: ctx.db,
    bucket: ctx.env.IMAGES,
    redis: createRedis(ctx.config, { retries: 2 }),
    rooms: ctx.rooms,
    forget: (room) => forgetRoom(ctx.env, room, "ACCOUNT_DELETED"),
  };
}

/**
 * One account's purge: a page budget per delivery, then the rest as a delivery of its own, so no
 * delivery does unbounded work; a failed delivery is retried from the state it was given.
 * `run` names the fan-out that started it (one chain per account per day), `page` counts its
 * deliveries (each continuation's deduplication id).
 */
export const purgeAccountJob: JobDefinition<{ userId: string; run: string; page?: number; state?: PurgeState }> = {
  name: "purge-account",
  payload: z
    .object({
      userId: z.string().min(1).max(64),
      run: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
      page: z.number().int().min(0).max(1_000_000).optional(),
      state: purgeStateSchema.optional(),
    })
    .strict(),
  async run(ctx, { userId, run, page = 0, state }) {
    const result = await purgeAccount(purgeDeps(ctx), userId, state);
    if (!result.found) return { skipped: "nothing to purge" };
    // Counts only: no id, no key, nothing of the account's.
    ctx.logger.info("account purge progressed", { ...result.counts, done: result.state === "done" });
    if (result.state !== "done") {
      await ctx.publishJob(purgeAccountJob, { userId, run, page: page + 1, state: result.state }, { deduplicationId: `purge-${userId}-${run}-${page + 1}` });
    }
    return { ...result.counts, done: result.state === "done" };
  },
  // The account is still marked `purging`: the next day's fan-out starts its purge again.
  fail: async (ctx) => ctx.logger.error("account purge gave up; the next run resumes it"),
};

/**
 * The daily fan-out: every account deleted at least ACCOUNT_PURGE_AFTER_DAYS ago is marked
 * `purging` (no sign-in restores it from then on) and gets a purge delivery; a full page hands
 * the rest to a delivery of its own. `at` runs it as if it were that instant (jobs:run).
 */
export const purgeUsersJob: JobDefinition<{ at?: string; afterId?: string }> = {
  name: "purge-users",
  payload: z.object({ at: jobInstantSchema, afterId: z.string().min(1).max(64).optional() }).strict(),
  schedule: { id: "charisma-purge-users", cron: "30 3 * * *" },
  async run(ctx, { at, afterId }) {
    const instant = jobInstant(at);
    const cutoff = new Date(instant.getTime() - ctx.config.ACCOUNT_PURGE_AFTER_DAYS * 86_400_000);
    const due = await claimAccountsForPurge(ctx.db, cutoff, { afterId, limit: FAN_OUT_PAGE });
    const run = instant.toISOString().slice(0, 10);
    await ctx.publishJobBatch(
      purgeAccountJob,
      due.map((userId) => ({ payload: { userId, run }, deduplicationId: `purge-${userId}-${run}-0` })),
    );
    const last = due.at(-1);
    if (due.length === FAN_OUT_PAGE && last) {
      await ctx.publishJob(purgeUsersJob, { at: instant.toISOString(), afterId: last }, { deduplicationId: `purge-users-${instant.toISOString()}-${last}` });
    }
    ctx.logger.info("account purge fanned out", { accounts: due.length });
    return { accounts: due.length, more: due.length === FAN_OUT_PAGE };
  },
  fail: async (ctx) => ctx.logger.warn("account purge fan-out gave up; the next run takes it"),
};
