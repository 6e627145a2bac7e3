import type { z } from "@hono/zod-openapi";
import { and, desc, eq, getTableColumns, inArray, isNotNull, sql } from "drizzle-orm";
import { messages, type SessionAnalysis, sessions } from "../../db/schema";
import type { Database } from "../../lib/db";
import type { AppConfig } from "../../lib/env";
import { afterCursor, cursorTime, decodeCursor, encodeCursor } from "../../lib/cursor";
import { AppError } from "../../lib/errors";
import { newId } from "../../lib/ids";
import type { PublishJob } from "../../lib/jobs";
import type { Logger } from "../../lib/logger";
import { roomUrl } from "../../realtime/kinds";
import type { Broadcast } from "../../realtime/rooms";
import { generationsJson, type GenerationJson } from "../suggestions/generations";
import { expireScreenshots } from "../uploads/retention";
import { attachUploads, detachUploads, findClaimableUploads, screenshotsExpired, sessionImagesJson } from "../uploads/service";
import { broadcastStatus, explainRefusal, retryTarget, type SessionRow, sessionIn, transitionSession, transitionStatement } from "./lifecycle";
import { liveSession, requireLiveSession } from "./live";
import { insertMessagesStatement } from "./messages";
import { ocrJob } from "./ocr";
import { sessionRoomKind } from "./room";
import type { confirmOcrSchema, createSessionSchema, listSessionsQuerySchema, messageSchema, sessionDetailSchema, sessionSummarySchema } from "./schemas";

export type SessionDeps = {
  db: Database;
  bucket: R2Bucket;
  broadcast: Broadcast;
  publishJob: PublishJob;
  /** Screenshot sessions (and OCR retries) spend AI money: the daily budget is checked before anything else. */
  assertWithinBudget(userId: string): Promise<void>;
  publicBaseUrl: string;
  logger: Logger;
  config: AppConfig;
};

type Summary = z.infer<typeof sessionSummarySchema>;
type Detail = z.infer<typeof sessionDetailSchema>;

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

export function wsUrl(publicBaseUrl: string, sessionId: string): string {
  return roomUrl(publicBaseUrl, sessionRoomKind, sessionId);
}

export function toSummary(row: SessionRow): Summary {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    title: row.title,
    matchName: row.matchName,
    platform: row.platform,
    phase: row.phase,
    phaseConfidence: row.phaseConfidence,
    interest: row.interest,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage } : null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

type JsonMessage = Omit<z.infer<typeof messageSchema>, "sentAt"> & { sentAt: string | null };

// The outer row's id for the subqueries, named by hand: drizzle writes a bare "id" for a column of
// a single-table select, which inside a subquery would bind to the subquery's own table.
const outerSessionId = sql`"sessions"."id"`;

/**
 * A session with its conversation, images and latest generation, in ONE query: the app's
 * hottest read, so related rows come back as JSON aggregated by Postgres, not as N queries.
 * The images and the generation are embedded from their own modules' expressions.
 */
export async function getSessionDetail(db: Database, userId: string, sessionId: string) {
  const [row] = await db
    .select({
      ...getTableColumns(sessions),
      messages: sql<JsonMessage[]>`coalesce((
        select json_agg(json_build_object('id', m.id, 'sender', m.sender, 'text', m.text, 'position', m.position,
          'source', m.source, 'ocrConfidence', m.ocr_confidence, 'sentAt', m.sent_at) order by m.position)
        from ${messages} m where m.session_id = ${outerSessionId}), '[]'::json)`,
      images: sessionImagesJson(outerSessionId),
      latestGeneration: sql<GenerationJson | null>`(${generationsJson(outerSessionId, 1)}) -> 0`,
    })
    .from(sessions)
    .where(liveSession({ sessionId, userId }))
    .limit(1);
  return row;
}

/** The stored analysis as the API shows it (the generation it came from is internal). */
function analysisJson(analysis: SessionAnalysis | null) {
  if (!analysis) return null;
  const { generationId: _, ...shown } = analysis;
  return shown;
}

export function toDetail(row: NonNullable<Awaited<ReturnType<typeof getSessionDetail>>>, publicBaseUrl: string): Detail {
  const { messages: conversation, images, latestGeneration: latest, ...session } = row;
  return {
    ...toSummary(session),
    messages: conversation.map((message) => ({ ...message, sentAt: iso(message.sentAt) })),
    images: images.map((image) => ({ ...image, deletedAt: iso(image.deletedAt) })),
    analysis: analysisJson(session.analysis),
    latestGeneration: latest
      ? {
          id: latest.id,
          status: latest.status,
          tone: latest.tone,
          language: latest.language,
          count: latest.count,
          errorCode: latest.errorCode,
          createdAt: iso(latest.createdAt)!,
          suggestions: latest.suggestions,
        }
      : null,
    wsUrl: wsUrl(publicBaseUrl, session.id),
  };
}

export async function loadSession(deps: Pick<SessionDeps, "db" | "publicBaseUrl">, userId: string, sessionId: string): Promise<Detail> {
  const row = await getSessionDetail(deps.db, userId, sessionId);
  if (!row) throw new AppError("SESSION_NOT_FOUND");
  return toDetail(row, deps.publicBaseUrl);
}

/**
 * Hands a session's screenshots to the OCR job (ocr.ts) through QStash. The deduplication id
 * names this queueing (the session's update time), so a retry after a failure is a new job.
 */
export async function publishOcrJob(deps: SessionDeps, session: SessionRow): Promise<void> {
  await deps.publishJob(ocrJob, { sessionId: session.id }, { deduplicationId: `ocr-${session.id}-${session.updatedAt.getTime()}` });
}

/** ocr_queued, then the job; if the job cannot be handed over, `failed` so `retry` can try again. */
async function queueOcr(deps: SessionDeps, owner: { sessionId: string; userId: string }, from: SessionRow["status"]) {
  const session = await transitionSession(deps, { ...owner, to: "ocr_queued", from: [from] });
  try {
    await publishOcrJob(deps, session);
    return session;
  } catch (error) {
    deps.logger.error("OCR job could not be published", { error });
    return transitionSession(deps, { ...owner, to: "failed", error: { code: "JOB_ENQUEUE_FAILED" } });
  }
}

export async function createSession(deps: SessionDeps, userId: string, input: z.infer<typeof createSessionSchema>): Promise<Detail> {
  // The id is made here so the session and its rows go in as one batch (one transaction).
  const sessionId = newId();
  const fields = { id: sessionId, userId, type: input.type, title: input.title ?? null, matchName: input.matchName ?? null, platform: input.platform ?? null };
  if (input.type === "text") {
    await deps.db.batch([
      deps.db.insert(sessions).values({ ...fields, status: "ready" }),
      insertMessagesStatement(deps.db, sessionId, input.messages, "manual"),
    ]);
    return loadSession(deps, userId, sessionId);
  }

  await deps.assertWithinBudget(userId);
  await findClaimableUploads(deps.db, deps.bucket, userId, input.imageKeys);
  const [, attached] = await deps.db.batch([
    deps.db.insert(sessions).values({ ...fields, status: "awaiting_upload" }),
    attachUploads(deps.db, { sessionId, userId, keys: input.imageKeys }),
  ]);
  if (attached.length !== input.imageKeys.length) {
    // Another request claimed some of these uploads in between: give back what this one took.
    await detachUploads(deps.db, sessionId);
    await deps.db.delete(sessions).where(eq(sessions.id, sessionId));
    throw new AppError("UPLOAD_ALREADY_USED");
  }
  await queueOcr(deps, { sessionId, userId }, "awaiting_upload");
  return loadSession(deps, userId, sessionId);
}

/**
 * Newest first. The cursor is the last row's (created_at to the microsecond, id): rows
 * inserted meanwhile sort before it, so pages neither repeat nor skip.
 */
export async function listSessions(db: Database, userId: string, query: z.infer<typeof listSessionsQuerySchema>) {
  const after = query.cursor ? decodeCursor(query.cursor) : undefined;
  const rows = await db
    .select({ ...getTableColumns(sessions), cursorAt: cursorTime(sessions.createdAt) })
    .from(sessions)
    .where(
      and(
        liveSession({ userId }),
        afterCursor(sessions.createdAt, sessions.id, after),
      ),
    )
    .orderBy(desc(sessions.createdAt), desc(sessions.id))
    .limit(query.limit + 1);
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    items: page.map(({ cursorAt: _cursorAt, ...row }) => toSummary(row)),
    nextCursor: rows.length > query.limit && last ? encodeCursor({ createdAt: last.cursorAt, id: last.id }) : null,
  };
}

export async function softDeleteSession(db: Database, userId: string, sessionId: string): Promise<void> {
  const [row] = await db
    .update(sessions)
    .set({ deletedAt: new Date() })
    .where(liveSession({ sessionId, userId }))
    .returning({ id: sessions.id });
  if (!row) throw new AppError("SESSION_NOT_FOUND");
}

/**
 * Hard-deletes up to `limit` of a user's sessions with everything that hangs off them (messages,
 * images' rows, generations, suggestions cascade); answers how many went. The account purge.
 */
export async function deleteSessionsOf(db: Database, userId: string, limit: number): Promise<number> {
  const batch = db.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, userId)).limit(limit);
  const deleted = await db.delete(sessions).where(inArray(sessions.id, batch)).returning({ id: sessions.id });
  return deleted.length;
}

/** Stores the phase the suggestion job detected in the conversation (1–4) and how sure it was. */
export async function recordPhase(
  db: Database,
  sessionId: string,
  detected: { phase: number; confidence: number; analysis: SessionAnalysis | null },
): Promise<void> {
  const { analysis } = detected;
  await db
    .update(sessions)
    .set({
      phase: detected.phase,
      phaseConfidence: detected.confidence,
      // A conversation too short to read keeps no analysis (an older one no longer describes it).
      analysis,
      interest: analysis?.interest ?? null,
      language: analysis?.language ?? null,
      analysedAt: analysis ? new Date() : null,
    })
    .where(eq(sessions.id, sessionId));
}

/** Accepts the OCR result, optionally replaced by the user's corrections, in one transaction. */
export async function confirmOcr(deps: SessionDeps, userId: string, sessionId: string, input: z.infer<typeof confirmOcrSchema>): Promise<Detail> {
  const owner = { sessionId, userId };
  const statements = input.messages
    ? [
        deps.db.delete(messages).where(and(eq(messages.sessionId, sessionId), sessionIn(owner, ["ocr_review"]))),
        insertMessagesStatement(deps.db, sessionId, input.messages, "ocr", sessionIn(owner, ["ocr_review"])),
      ]
    : [];
  const results = (await deps.db.batch([...statements, transitionStatement(deps.db, { ...owner, to: "ready", from: ["ocr_review"] })] as never)) as unknown[];
  const [session] = results.at(-1) as SessionRow[];
  if (!session) return explainRefusal(deps.db, owner, "confirm OCR");
  await broadcastStatus(deps.broadcast, session);
  // An `after_ocr` user's screenshots go now that the confirm is stored (nothing happens for
  // anyone else's yet); if this fails, the retention sweep removes them on its next run.
  await expireScreenshots(deps, { at: new Date(), sessionId }).catch((error: unknown) =>
    deps.logger.warn("screenshots not deleted at confirm; the retention sweep will", { error }),
  );
  return loadSession(deps, userId, sessionId);
}

/** `failed` → back to the step that failed: OCR is queued again, a failed generation returns to ready. */
export async function retrySession(deps: SessionDeps, userId: string, sessionId: string): Promise<Detail> {
  const owner = { sessionId, userId };
  const row = await requireLiveSession(deps.db, owner);
  if (row.status !== "failed") return explainRefusal(deps.db, owner, "be retried");
  const target = retryTarget(row.failedFrom);
  if (target === "ocr_queued") {
    if (await screenshotsExpired(deps.db, sessionId)) throw new AppError("SCREENSHOTS_EXPIRED");
    await deps.assertWithinBudget(userId);
    await queueOcr(deps, owner, "failed");
  }
  else await transitionSession(deps, { ...owner, to: target, from: ["failed"] });
  return loadSession(deps, userId, sessionId);
}

/** The phase of the user's most recent live session that has one detected, or null (the daily tip leans towards it). */
/** The language of the user's most recently analysed live conversation (BCP-47), or null. */
export async function latestConversationLanguage(db: Database, userId: string): Promise<string | null> {
  const [row] = await db
    .select({ language: sessions.language })
    .from(sessions)
    .where(and(liveSession({ userId }), isNotNull(sessions.language)))
    .orderBy(desc(sessions.analysedAt), desc(sessions.id))
    .limit(1);
  return row?.language ?? null;
}

export async function latestSessionPhase(db: Database, userId: string): Promise<number | null> {
  const [row] = await db
    .select({ phase: sessions.phase })
    .from(sessions)
    .where(and(liveSession({ userId }), isNotNull(sessions.phase)))
    .orderBy(desc(sessions.createdAt), desc(sessions.id))
    .limit(1);
  return row?.phase ?? null;
}
