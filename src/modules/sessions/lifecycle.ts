import { and, eq, inArray, or, sql, type SQL, type SQLWrapper } from "drizzle-orm";
import { sessions, type sessionStatusEnum } from "../../db/schema";
import type { Database } from "../../lib/db";
import { AppError, errorMessage, type OutcomeErrorCode } from "../../lib/errors";
import type { Broadcast } from "../../realtime/rooms";
import { findLiveSession, liveSession, liveSessionExists, type SessionRow } from "./live";
import { sessionRoom } from "./room";

export type { SessionRow } from "./live";
export type SessionStatus = (typeof sessionStatusEnum.enumValues)[number];

/**
 * The session state machine of SPEC §5, the one place that says which step may follow which.
 * `failed` is reachable from the OCR steps and from generating; `retry` leaves it for the
 * step that failed (see `retryTarget`).
 */
export const sessionTransitions: Record<SessionStatus, readonly SessionStatus[]> = {
  awaiting_upload: ["ocr_queued", "failed"],
  ocr_queued: ["ocr_processing", "failed"],
  ocr_processing: ["ocr_review", "failed"],
  ocr_review: ["ready"],
  ready: ["generating"],
  generating: ["ready", "failed"],
  failed: ["ocr_queued", "ready"],
};

/** Statuses in which the user may edit the conversation. */
export const EDITABLE_STATUSES = ["ocr_review", "ready"] as const satisfies readonly SessionStatus[];

export function sourcesOf(to: SessionStatus): SessionStatus[] {
  return (Object.keys(sessionTransitions) as SessionStatus[]).filter((from) => sessionTransitions[from].includes(to));
}

/** Where `retry` sends a failed session: back to OCR if it failed there, else back to ready. */
export function retryTarget(failedFrom: SessionStatus | null): SessionStatus {
  return failedFrom === "generating" ? "ready" : "ocr_queued";
}

/**
 * `exists (this session, its OCR confirmed by the user)`: it left ocr_review for ready, the only
 * way there, and never goes back to OCR (a failed generation returns to ready).
 */
export function ocrConfirmed(sessionId: SQLWrapper): SQL {
  return sql`exists (select 1 from ${sessions} where ${and(
    eq(sessions.id, sessionId),
    or(inArray(sessions.status, ["ready", "generating"]), and(eq(sessions.status, "failed"), eq(sessions.failedFrom, "generating"))),
  )})`;
}

type Owner = { sessionId: string; userId?: string };

/** `exists(the live session, in one of these statuses)`: guards statements batched with a transition. */
export function sessionIn(owner: Owner, statuses: readonly SessionStatus[]): SQL {
  return liveSessionExists(owner, inArray(sessions.status, [...statuses]));
}

export type TransitionInput = Owner & {
  to: SessionStatus;
  /** Narrower than the machine allows, when the caller needs a specific source (e.g. `retry`). */
  from?: readonly SessionStatus[];
  error?: { code: OutcomeErrorCode; message?: string };
  /** A further condition, for a transition batched after a statement it depends on. */
  when?: SQL;
};

/**
 * The compare-and-set UPDATE for one transition: it changes nothing unless the session is in
 * an allowed source status, so racing callers cannot both move it. Batchable.
 */
export function transitionStatement(db: Database, input: TransitionInput) {
  const allowed = (input.from ?? sourcesOf(input.to)).filter((from) => sessionTransitions[from].includes(input.to));
  const failing = input.to === "failed";
  return db
    .update(sessions)
    .set({
      status: input.to,
      // SET sees the row as it was: the status being left is the step that failed.
      failedFrom: failing ? sql`${sessions.status}` : null,
      errorCode: failing ? (input.error?.code ?? "INTERNAL_ERROR") : null,
      errorMessage: failing ? (input.error?.message ?? errorMessage(input.error?.code ?? "INTERNAL_ERROR")) : null,
    })
    .where(and(liveSession(input), inArray(sessions.status, allowed), input.when))
    .returning();
}

/** 404 when the caller has no such session, else 409 naming the status it is in. */
export async function explainRefusal(db: Database, owner: Owner, attempted: string): Promise<never> {
  const row = await findLiveSession(db, owner);
  if (!row) throw new AppError("SESSION_NOT_FOUND");
  throw new AppError("INVALID_SESSION_STATE", {
    message: `A session that is ${row.status} cannot ${attempted}`,
    details: { status: row.status },
  });
}

/**
 * Broadcasts a status change that Postgres already holds. Jobs pass a `key`, so a redelivered
 * job never announces the same step twice.
 */
export function broadcastStatus(broadcast: Broadcast, session: SessionRow, options: { progress?: number; key?: string } = {}) {
  return broadcast(
    sessionRoom(session.id),
    {
      type: "status",
      data: {
        status: session.status,
        ...(options.progress === undefined ? {} : { progress: options.progress }),
        ...(session.status === "failed" && session.errorCode !== null ? { error: { code: session.errorCode, message: session.errorMessage } } : {}),
      },
    },
    options.key === undefined ? undefined : { key: options.key },
  );
}

/** Moves a session one step (Postgres first, then the room), or explains why it cannot. */
export async function transitionSession(deps: { db: Database; broadcast: Broadcast }, input: TransitionInput): Promise<SessionRow> {
  const [session] = await transitionStatement(deps.db, input);
  if (!session) return explainRefusal(deps.db, input, `move to ${input.to}`);
  await broadcastStatus(deps.broadcast, session);
  return session;
}
