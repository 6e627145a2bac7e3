import { and, asc, eq, inArray, or, type SQL, sql } from "drizzle-orm";
import type { Redis } from "@upstash/redis/cloudflare";
import { z } from "zod";
import { aiEngineFor } from "../../ai/engine";
import { buildOcrRequest, type OcrOutput, ocrOutputSchema } from "../../ai/prompts/ocr.v1";
import { AiError } from "../../ai/strategy";
import { messages, sessions } from "../../db/schema";
import { toBase64 } from "../../lib/encoding";
import { AppError } from "../../lib/errors";
import { holdLease, leaseHeldBy, leaseLapsed, newLeaseOwner, releaseLease, staleRun, takeLease } from "../../lib/lease";
import { createRedis } from "../../lib/redis";
import { type JobContext, type JobDefinition, jobInstant, jobInstantSchema } from "../jobs/definition";
import { ocrCacheSeconds } from "../uploads/retention";
import { markScreenshotRead, screenshotsOf } from "../uploads/service";
import type { ScreenshotRetention } from "../users/schemas";
import { screenshotRetentionOfUser } from "../users/service";
import { broadcastStatus, transitionSession, transitionStatement } from "./lifecycle";
import { liveSession, liveSessionExists } from "./live";
import { ocrCacheKey } from "./ocr-cache";
import { insertMessagesStatement } from "./messages";
import { sessionRoom } from "./room";
import { MAX_MESSAGES } from "./schemas";

export type OcrResult = OcrOutput;
type OcrMessage = OcrResult["messages"][number];

/** Stale OCR runs the sweep fails per delivery. */
const SWEEP_BATCH = 100;
const lease = { owner: sessions.leaseOwner, expiresAt: sessions.leaseExpiresAt };

const normalise = (message: OcrMessage) => `${message.sender}|${message.text.toLowerCase().replace(/\s+/g, " ").trim()}`;

/**
 * Joins the screenshots of one conversation, in order. Consecutive screenshots usually overlap
 * (the user scrolled less than a screen): the longest run that ends one and starts the next is
 * kept once. The newest MAX_MESSAGES messages are kept.
 */
export function mergeOcrResults(results: OcrResult[]) {
  const merged: OcrMessage[] = [];
  for (const result of results) {
    const next = result.messages
      .map((message) => ({ ...message, text: message.text.trim().slice(0, 4000) }))
      .filter((message) => message.text.length > 0);
    let overlap = Math.min(merged.length, next.length);
    for (; overlap > 0; overlap--) {
      const tail = merged.slice(merged.length - overlap);
      if (tail.every((message, i) => normalise(message) === normalise(next[i]!))) break;
    }
    merged.push(...next.slice(overlap));
  }
  const platforms = results.map((result) => result.platform).filter((name) => name !== "other");
  return {
    messages: merged.slice(-MAX_MESSAGES),
    matchName: results.find((result) => result.matchName)?.matchName ?? null,
    platform: platforms[0] ?? (results.length > 0 ? ("other" as const) : null),
  };
}

type Screenshot = Awaited<ReturnType<typeof screenshotsOf>>[number];

/**
 * Reads one screenshot, from the user's own cache by its SHA-256 when they had it read before.
 * A screenshot the retention sweep deleted is SCREENSHOTS_EXPIRED, cached result or not.
 */
async function readScreenshot(
  ctx: JobContext,
  redis: Redis,
  owner: { userId: string; retention: ScreenshotRetention },
  image: Screenshot,
  signal: AbortSignal,
): Promise<OcrResult> {
  if (image.r2DeletedAt) throw new AppError("SCREENSHOTS_EXPIRED");
  const userId = owner.userId;
  if (image.sha256) {
    // A cache that is down costs a model call, never the run.
    const cached = await redis.get<OcrResult>(ocrCacheKey(userId, image.sha256)).catch((error: unknown) => {
      ctx.logger.warn("OCR cache read failed", { error });
      return null;
    });
    const parsed = ocrOutputSchema.safeParse(cached);
    if (parsed.success) return parsed.data;
  }
  const object = await ctx.env.IMAGES.get(image.r2Key);
  if (!object) throw new AppError("SCREENSHOTS_EXPIRED");
  const base64 = toBase64(new Uint8Array(await object.arrayBuffer()));
  const engine = aiEngineFor(ctx.config, ctx.db);
  const { data } = await engine.completeStructured(buildOcrRequest([{ mimeType: image.contentType, base64 }]), ocrOutputSchema, {
    kind: "ocr",
    userId,
    signal,
    order: engine.ocrOrder,
    totalTimeoutMs: ctx.config.AI_OCR_TIMEOUT_MS,
  });
  if (image.sha256) {
    // Cached no longer than the screenshot itself is kept.
    await redis.set(ocrCacheKey(userId, image.sha256), data, { ex: ocrCacheSeconds(owner.retention, image.uploadedAt) }).catch((error: unknown) => ctx.logger.warn("OCR cache write failed", { error }));
  }
  return data;
}

/**
 * Takes the session for this run: one queued for OCR, or one whose last run's lease lapsed
 * (that run died). While another run's lease is live the delivery is refused (503) so QStash
 * delivers it again later; anything else (finished, deleted) is done.
 */
async function claimSession(ctx: JobContext, sessionId: string, owner: string) {
  const [claimed] = await ctx.db
    .update(sessions)
    .set({ status: "ocr_processing", ...takeLease(owner, ctx.config.JOB_LEASE_SECONDS) })
    .where(
      and(liveSession({ sessionId }), or(eq(sessions.status, "ocr_queued"), and(eq(sessions.status, "ocr_processing"), leaseLapsed(lease)))),
    )
    .returning();
  if (claimed) return { claimed };
  const [current] = await ctx.db.select({ status: sessions.status, deletedAt: sessions.deletedAt }).from(sessions).where(eq(sessions.id, sessionId));
  if (current?.status === "ocr_processing" && !current.deletedAt) throw new AppError("JOB_RUN_IN_PROGRESS");
  return { skipped: current?.status ?? "missing" };
}

/**
 * The OCR job: ocr_queued → ocr_processing → (each screenshot read, progress broadcast) →
 * messages written → ocr_review, then `ocr.completed`. Safe to deliver twice: the claim is a
 * compare-and-set with a lease the run renews while alive, the messages are replaced in the
 * same transaction as the last transition, and every event carries a key the room publishes once.
 */
async function runOcrJob(ctx: JobContext, { sessionId }: { sessionId: string }) {
  const owner = newLeaseOwner(ctx.messageId);
  const claim = await claimSession(ctx, sessionId, owner);
  if (!claim.claimed) return { skipped: claim.skipped };
  const current = claim.claimed;
  await broadcastStatus(ctx.broadcast, current, { progress: 0, key: `ocr:${sessionId}:start` });

  // Every write of this run holds only while the run still holds the session.
  const held = liveSessionExists({ sessionId }, and(eq(sessions.status, "ocr_processing"), leaseHeldBy(lease, owner)));
  const heartbeat = holdLease({
    seconds: ctx.config.JOB_LEASE_SECONDS,
    renew: async () =>
      (
        await ctx.db
          .update(sessions)
          .set(takeLease(owner, ctx.config.JOB_LEASE_SECONDS))
          .where(and(eq(sessions.id, sessionId), eq(sessions.status, "ocr_processing"), leaseHeldBy(lease, owner)))
          .returning({ id: sessions.id })
      ).length > 0,
    logger: ctx.logger,
  });
  try {
    return await readAndStore(ctx, current, { held, signal: heartbeat.abort.signal });
  } catch (error) {
    if (heartbeat.lost()) return { skipped: "lease lost" };
    // Worth QStash's retry: give the lease up so the next delivery need not wait it out (the
    // heartbeat stopped first, so no late renewal takes it back).
    await heartbeat.stop();
    await ctx.db
      .update(sessions)
      .set(releaseLease())
      .where(and(eq(sessions.id, sessionId), eq(sessions.status, "ocr_processing"), leaseHeldBy(lease, owner)))
      .catch((releaseError: unknown) => ctx.logger.warn("lease release failed", { error: releaseError }));
    throw error;
  } finally {
    await heartbeat.stop();
  }
}

async function readAndStore(ctx: JobContext, current: typeof sessions.$inferSelect, run: { held: SQL; signal: AbortSignal }) {
  const sessionId = current.id;
  const deps = { db: ctx.db, broadcast: ctx.broadcast };
  const [images, retention] = await Promise.all([screenshotsOf(ctx.db, sessionId), screenshotRetentionOfUser(ctx.db, current.userId)]);
  const redis = createRedis(ctx.config, { retries: 1 });
  const results: OcrResult[] = [];
  for (const [i, image] of images.entries()) {
    try {
      results.push(await readScreenshot(ctx, redis, { userId: current.userId, retention }, image, run.signal));
    } catch (error) {
      // A vendor that refuses the image outright will refuse it on every retry too.
      if (error instanceof AiError && error.code === "AI_BAD_REQUEST") {
        await transitionSession(deps, { sessionId, to: "failed", from: ["ocr_processing"], error: { code: "OCR_FAILED" }, when: run.held });
        return { failed: "OCR_FAILED" };
      }
      // So does a spent budget, until midnight UTC (`retry` picks it up from here), and a
      // screenshot that is gone for good.
      if (error instanceof AppError && (error.code === "AI_BUDGET_EXCEEDED" || error.code === "SCREENSHOTS_EXPIRED")) {
        await transitionSession(deps, { sessionId, to: "failed", from: ["ocr_processing"], error: { code: error.code, message: error.message }, when: run.held });
        return { failed: error.code };
      }
      throw error;
    }
    await markScreenshotRead(ctx.db, image.id);
    await broadcastStatus(ctx.broadcast, current, { progress: (i + 1) / images.length, key: `ocr:${sessionId}:progress:${i}` });
  }

  const merged = mergeOcrResults(results);
  if (merged.messages.length === 0) {
    await transitionSession(deps, { sessionId, to: "failed", from: ["ocr_processing"], error: { code: "NOT_A_CONVERSATION" }, when: run.held });
    return { failed: "NOT_A_CONVERSATION" };
  }
  const [, , , [reviewed]] = await ctx.db.batch([
    ctx.db.delete(messages).where(and(eq(messages.sessionId, sessionId), run.held)),
    insertMessagesStatement(ctx.db, sessionId, merged.messages.map(({ sender, text }) => ({ sender, text })), "ocr", run.held, merged.messages.map((m) => m.confidence)),
    ctx.db
      .update(sessions)
      .set({ matchName: sql`coalesce(${sessions.matchName}, ${merged.matchName})`, platform: sql`coalesce(${sessions.platform}, ${merged.platform}::chat_platform)` })
      .where(and(eq(sessions.id, sessionId), run.held)),
    transitionStatement(ctx.db, { sessionId, to: "ocr_review", from: ["ocr_processing"], when: run.held }),
  ]);
  if (!reviewed) return { skipped: "raced" };
  const written = await ctx.db.select().from(messages).where(eq(messages.sessionId, sessionId)).orderBy(asc(messages.position));
  await ctx.broadcast(
    sessionRoom(sessionId),
    {
      type: "ocr.completed",
      data: {
        messages: written.map((m) => ({ id: m.id, sender: m.sender, text: m.text, position: m.position, ocrConfidence: m.ocrConfidence })),
        matchName: reviewed.matchName,
        platform: reviewed.platform,
      },
    },
    { key: `ocr:${sessionId}:completed` },
  );
  await broadcastStatus(ctx.broadcast, reviewed, { key: `ocr:${sessionId}:review` });
  return { messages: written.length };
}

/** Fails a session whose OCR will not finish, with a code the app can show; retry starts it again. */
async function failOcr(ctx: JobContext, sessionId: string, when: SQL) {
  const [failed] = await transitionStatement(ctx.db, { sessionId, to: "failed", from: ["ocr_queued", "ocr_processing"], error: { code: "OCR_FAILED" }, when });
  if (failed) await broadcastStatus(ctx.broadcast, failed, { key: `ocr:${sessionId}:failed:${failed.updatedAt.getTime()}` });
}

/**
 * QStash gave up on the OCR job: the session fails — unless a run still holds a live lease on
 * it (alive, just slow: it finishes, or its lease lapses and the sweep fails it).
 */
async function failOcrJob(ctx: JobContext, { sessionId }: { sessionId: string }) {
  await failOcr(ctx, sessionId, leaseLapsed(lease));
}

/** The periodic sweep: fails OCR runs that died and were never taken over, or never started. */
async function sweepOcrRuns(ctx: JobContext, { at }: { at?: string }) {
  const stale = and(
    inArray(sessions.status, ["ocr_queued", "ocr_processing"]),
    staleRun({ expiresAt: sessions.leaseExpiresAt, updatedAt: sessions.updatedAt }, ctx.config.JOB_LEASE_SECONDS, at === undefined ? undefined : jobInstant(at)),
  )!;
  const found = await ctx.db.select({ id: sessions.id }).from(sessions).where(stale).limit(SWEEP_BATCH);
  for (const { id } of found) await failOcr(ctx, id, stale);
  return { swept: found.length };
}

export const ocrJob: JobDefinition<{ sessionId: string }> = {
  name: "ocr",
  payload: z.object({ sessionId: z.string().min(1).max(64) }),
  run: runOcrJob,
  fail: failOcrJob,
};

export const ocrSweepJob: JobDefinition<{ at?: string }> = {
  name: "sweep-ocr",
  payload: z.object({ at: jobInstantSchema }).strict(),
  // OCR runs that died and were never taken over end `failed`, so no session stays busy for long.
  schedule: { id: "charisma-sweep-ocr", cron: "*/5 * * * *" },
  run: sweepOcrRuns,
  // A sweep that failed every retry changes nothing; the next scheduled one tries again.
  fail: async (ctx) => ctx.logger.warn("OCR sweep gave up"),
};
