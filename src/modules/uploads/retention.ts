import { and, asc, eq, gt, inArray, isNotNull, isNull, lte, or, type SQL, sql } from "drizzle-orm";
import { z } from "zod";
import { sessionImages } from "../../db/schema";
import type { Database } from "../../lib/db";
import type { AppConfig } from "../../lib/env";
import { createRedis } from "../../lib/redis";
import { type JobDefinition, jobInstant, jobInstantSchema } from "../jobs/definition";
import { ocrConfirmed } from "../sessions/lifecycle";
import { sessionDeletedBy } from "../sessions/live";
import { ocrCacheKey } from "../sessions/ocr-cache";
import type { ScreenshotRetention } from "../users/schemas";
import { screenshotRetentionOf } from "../users/service";

const HOUR_MS = 3_600_000;

/**
 * Hours a screenshot stays in R2 after its upload, by the owner's retention. `after_ocr` goes as
 * soon as the OCR is confirmed, and at the latest after the default window (a session whose
 * OCR is never confirmed keeps its screenshots no longer than anyone's).
 */
export const RETENTION_HOURS: Record<ScreenshotRetention, number> = { after_ocr: 24, "24h": 24, "7d": 7 * 24, "30d": 30 * 24 };
/** An upload no session took is removed (object and row) this long after its URL was signed. */
export const UNATTACHED_UPLOAD_HOURS = 1;
/** An `after_ocr` OCR result is cached at most this long: the screenshot goes at the confirm. */
const AFTER_OCR_CACHE_SECONDS = 3600;
/** R2 deletes at most 1,000 keys per call: a page is one call. */
const SWEEP_PAGE = 1000;

/** Seconds an OCR result of a screenshot uploaded at `uploadedAt` may be cached: no longer than the screenshot lives. */
export function ocrCacheSeconds(retention: ScreenshotRetention, uploadedAt: Date | null, now = Date.now()): number {
  if (retention === "after_ocr") return AFTER_OCR_CACHE_SECONDS;
  const expiresAt = (uploadedAt?.getTime() ?? now) + RETENTION_HOURS[retention] * HOUR_MS;
  return Math.max(60, Math.ceil((expiresAt - now) / 1000));
}

// The outer row's columns named by hand for the subqueries (drizzle may write them bare).
const imageSessionId = sql`"session_images"."session_id"`;
const imageUserId = sql`"session_images"."user_id"`;
const instant = (date: Date) => sql`${date.toISOString()}::timestamptz`;

/** The screenshots whose time in R2 is over at `at`: unattached ones after an hour, deleted sessions', and past their owner's retention. */
function expiredAt(at: Date, config: Pick<AppConfig, "DELETED_SESSION_RETENTION_HOURS">): SQL {
  const retention = screenshotRetentionOf(imageUserId);
  // Constants of this file, written into the statement as literals.
  const windowHours = sql`case ${retention} ${sql.raw(
    Object.entries(RETENTION_HOURS)
      .map(([name, hours]) => `when '${name}' then ${hours}`)
      .join(" "),
  )} end`;
  return or(
    and(isNull(sessionImages.sessionId), lte(sessionImages.createdAt, new Date(at.getTime() - UNATTACHED_UPLOAD_HOURS * HOUR_MS))),
    and(
      isNotNull(sessionImages.sessionId),
      or(
        sessionDeletedBy(imageSessionId, new Date(at.getTime() - config.DELETED_SESSION_RETENTION_HOURS * HOUR_MS)),
        sql`coalesce(${sessionImages.uploadedAt}, ${sessionImages.createdAt}) + ${windowHours} * interval '1 hour' <= ${instant(at)}`,
        and(sql`${retention} = 'after_ocr'`, ocrConfirmed(imageSessionId)),
      ),
    ),
  )!;
}

export type RetentionDeps = { db: Database; bucket: R2Bucket; config: AppConfig };

/**
 * One page (≤ 1,000) of expired screenshots, in id order after `afterId`: deleted from R2 in one
 * call, their OCR cache entries dropped, then recorded — an unattached upload loses its row, an
 * attached one keeps it with `r2_deleted_at` (the session keeps its messages). Every step is
 * idempotent, so a redelivery finds nothing left to do, and a failure part-way is finished by the
 * next delivery. `sessionId` narrows it to one session (the confirm of an `after_ocr` user).
 */
export async function expireScreenshots(deps: RetentionDeps, options: { at: Date; afterId?: string; sessionId?: string }) {
  const page = await deps.db
    .select({ id: sessionImages.id, r2Key: sessionImages.r2Key, userId: sessionImages.userId, sha256: sessionImages.sha256, sessionId: sessionImages.sessionId })
    .from(sessionImages)
    .where(
      and(
        isNull(sessionImages.r2DeletedAt),
        options.sessionId === undefined ? undefined : eq(sessionImages.sessionId, options.sessionId),
        options.afterId === undefined ? undefined : gt(sessionImages.id, options.afterId),
        expiredAt(options.at, deps.config),
      ),
    )
    .orderBy(asc(sessionImages.id))
    .limit(SWEEP_PAGE);
  if (page.length === 0) return { deleted: 0, rowsRemoved: 0, full: false, lastId: undefined };

  await deps.bucket.delete(page.map((image) => image.r2Key));
  const cached = page.flatMap((image) => (image.sha256 ? [ocrCacheKey(image.userId, image.sha256)] : []));
  // A cache entry that outlived its screenshot would keep the conversation: failing here has
  // QStash deliver the page again (the R2 delete above is idempotent).
  if (cached.length > 0) await createRedis(deps.config, { retries: 1 }).del(...cached);
  const ids = page.map((image) => image.id);
  const orphans = page.filter((image) => image.sessionId === null).map((image) => image.id);
  const [removed] = await deps.db.batch([
    // Still unattached (a session may have taken it meanwhile: that one is only marked).
    deps.db.delete(sessionImages).where(and(inArray(sessionImages.id, orphans), isNull(sessionImages.sessionId))).returning({ id: sessionImages.id }),
    deps.db.update(sessionImages).set({ r2DeletedAt: new Date() }).where(and(inArray(sessionImages.id, ids), isNull(sessionImages.r2DeletedAt))),
  ]);
  return { deleted: page.length, rowsRemoved: removed.length, full: page.length === SWEEP_PAGE, lastId: page.at(-1)!.id };
}

/**
 * The retention sweep, every 15 minutes (or as of `at`): removes what `expireScreenshots` finds,
 * a page per delivery; a full page hands the rest to a delivery of its own, so no delivery does
 * unbounded work.
 */
export const screenshotRetentionJob: JobDefinition<{ at?: string; afterId?: string }> = {
  name: "screenshot-retention",
  payload: z.object({ at: jobInstantSchema, afterId: z.string().min(1).max(64).optional() }).strict(),
  schedule: { id: "charisma-screenshot-retention", cron: "*/15 * * * *" },
  async run(ctx, { at, afterId }) {
    const asOf = jobInstant(at).toISOString();
    const swept = await expireScreenshots({ db: ctx.db, bucket: ctx.env.IMAGES, config: ctx.config }, { at: new Date(asOf), afterId });
    if (swept.full) {
      await ctx.publishJob(screenshotRetentionJob, { at: asOf, afterId: swept.lastId }, { deduplicationId: `screenshot-retention-${asOf}-${swept.lastId}` });
    }
    return { deleted: swept.deleted, rowsRemoved: swept.rowsRemoved, more: swept.full };
  },
  // Nothing is half-done for long: the next scheduled sweep finds whatever is left.
  fail: async (ctx) => ctx.logger.warn("screenshot retention sweep gave up"),
};
