import { and, desc, eq, exists, inArray, sql } from "drizzle-orm";
import type { z } from "zod";
import { magicOpeners, openerGenerations } from "../../db/schema";
import { afterCursor, cursorTime, decodeCursor, encodeCursor } from "../../lib/cursor";
import type { Database } from "../../lib/db";
import { AppError } from "../../lib/errors";
import { newId } from "../../lib/ids";
import type { PublishJob } from "../../lib/jobs";
import type { Logger } from "../../lib/logger";
import { roomUrl } from "../../realtime/kinds";
import { DEFAULT_TONE } from "../suggestions/schemas";
import { finishedUploadOf } from "../uploads/service";
import { getUser } from "../users/service";
import { openerJob } from "./job";
import { openerRoomKind } from "./room";
import type { generateOpenersSchema, openerHistoryQuerySchema, openerSchema } from "./schemas";

export type OpenerDeps = {
  db: Database;
  bucket: R2Bucket;
  publishJob: PublishJob;
  assertWithinBudget(userId: string): Promise<void>;
  publicBaseUrl: string;
  logger: Logger;
};

const DEFAULT_COUNT = 3;

/**
 * Starts an opener generation: budget first (429 before anything is spent), the photo must be
 * the caller's own finished upload, then the generation row is written — before the 202, so the
 * room knows its owner when the client connects — and the job is published once.
 */
export async function startOpenerGeneration(deps: OpenerDeps, userId: string, input: z.infer<typeof generateOpenersSchema>) {
  await deps.assertWithinBudget(userId);
  const { photoKey } = input.profile;
  // Someone else's key, one never finished, and one gone from R2 are the same answer.
  if (photoKey && (!(await finishedUploadOf(deps.db, userId, photoKey)) || (await deps.bucket.head(photoKey)) === null)) {
    throw new AppError("UPLOAD_NOT_FOUND", { details: { missingKeys: 1 } });
  }
  const { preferences } = await getUser(deps.db, userId);
  const generationId = newId();
  await deps.db.insert(openerGenerations).values({
    id: generationId,
    userId,
    profile: input.profile,
    tone: input.tone ?? preferences.defaultTone ?? DEFAULT_TONE,
    count: input.count ?? preferences.suggestionCount ?? DEFAULT_COUNT,
    language: input.language ?? preferences.language ?? null,
  });
  try {
    await deps.publishJob(openerJob, { generationId }, { deduplicationId: `openers-${generationId}` });
  } catch (error) {
    deps.logger.error("opener job could not be queued", { error });
    await deps.db
      .update(openerGenerations)
      .set({ status: "failed", errorCode: "JOB_ENQUEUE_FAILED" })
      .where(eq(openerGenerations.id, generationId))
      // The 503 below goes out either way; a generation left `queued` is failed by the sweep.
      .catch((markError: unknown) => deps.logger.warn("opener generation not marked failed", { error: markError }));
    throw new AppError("SERVICE_UNAVAILABLE", { message: "Openers could not be queued; try again", cause: error });
  }
  return { generationId, wsUrl: roomUrl(deps.publicBaseUrl, openerRoomKind, generationId) };
}

type Opener = z.infer<typeof openerSchema>;
const iso = (value: Date | string) => new Date(value).toISOString();

function toOpener(row: typeof magicOpeners.$inferSelect): Opener {
  return { id: row.id, rank: row.rank, tone: row.tone, text: row.text, liked: row.liked, createdAt: iso(row.createdAt) };
}

/**
 * The caller's openers, newest generation first, grouped by generation: a page of
 * generations that still hold at least one opener, each with its openers in rank order.
 */
export async function listOpeners(db: Database, userId: string, query: z.infer<typeof openerHistoryQuerySchema>) {
  const after = query.cursor ? decodeCursor(query.cursor) : undefined;
  const generations = await db
    .select({ id: openerGenerations.id, profile: openerGenerations.profile, tone: openerGenerations.tone, createdAt: openerGenerations.createdAt, cursorAt: cursorTime(openerGenerations.createdAt) })
    .from(openerGenerations)
    .where(
      and(
        eq(openerGenerations.userId, userId),
        exists(db.select({ one: sql`1` }).from(magicOpeners).where(eq(magicOpeners.generationId, openerGenerations.id))),
        afterCursor(openerGenerations.createdAt, openerGenerations.id, after),
      ),
    )
    .orderBy(desc(openerGenerations.createdAt), desc(openerGenerations.id))
    .limit(query.limit + 1);
  const page = generations.slice(0, query.limit);
  const openers = page.length === 0 ? [] : await db.select().from(magicOpeners).where(inArray(magicOpeners.generationId, page.map((g) => g.id))).orderBy(magicOpeners.rank);
  const last = page.at(-1);
  return {
    items: page.map((generation) => ({
      generationId: generation.id,
      profile: generation.profile,
      tone: generation.tone,
      createdAt: iso(generation.createdAt),
      openers: openers.filter((opener) => opener.generationId === generation.id).map(toOpener),
    })),
    nextCursor: generations.length > query.limit && last ? encodeCursor({ createdAt: last.cursorAt, id: last.id }) : null,
  };
}

/** Likes, dislikes or clears one of the caller's openers; anyone else's is a 404. */
export async function toggleOpener(db: Database, userId: string, openerId: string, liked: boolean | null): Promise<Opener> {
  const [row] = await db
    .update(magicOpeners)
    .set({ liked, updatedAt: new Date() })
    .where(and(eq(magicOpeners.id, openerId), eq(magicOpeners.userId, userId)))
    .returning();
  if (!row) throw new AppError("OPENER_NOT_FOUND");
  return toOpener(row);
}

/**
 * Hard-deletes up to `limit` of a user's opener generations with their openers; answers how many
 * went. The account purge.
 */
export async function deleteOpenerGenerationsOf(db: Database, userId: string, limit: number): Promise<number> {
  const batch = db.select({ id: openerGenerations.id }).from(openerGenerations).where(eq(openerGenerations.userId, userId)).limit(limit);
  const deleted = await db.delete(openerGenerations).where(inArray(openerGenerations.id, batch)).returning({ id: openerGenerations.id });
  return deleted.length;
}

/** Removes one of the caller's openers from their history. */
export async function deleteOpener(db: Database, userId: string, openerId: string): Promise<void> {
  const [row] = await db
    .delete(magicOpeners)
    .where(and(eq(magicOpeners.id, openerId), eq(magicOpeners.userId, userId)))
    .returning({ id: magicOpeners.id });
  if (!row) throw new AppError("OPENER_NOT_FOUND");
}
