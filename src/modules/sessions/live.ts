import { and, eq, isNull, lte, type SQL, sql, type SQLWrapper } from "drizzle-orm";
import { sessions } from "../../db/schema";
import type { Database } from "../../lib/db";
import { AppError } from "../../lib/errors";

export type SessionRow = typeof sessions.$inferSelect;

/**
 * Which session: this id, of this owner — either may be left out, and either may be an SQL
 * expression (a column of the statement it guards, another module's subquery) instead of a value.
 */
export type SessionOwner = { sessionId?: string | SQLWrapper; userId?: string | SQLWrapper };

/**
 * THE condition for "the caller's live session": not deleted, and this id and owner where given.
 * A deleted session and someone else's answer exactly like a missing one (404, never 403).
 */
export function liveSession(owner: SessionOwner): SQL {
  return and(
    owner.sessionId === undefined ? undefined : eq(sessions.id, owner.sessionId),
    owner.userId === undefined ? undefined : eq(sessions.userId, owner.userId),
    isNull(sessions.deletedAt),
  )!;
}

/** `exists (that live session [and also …])`: guards a statement on another table, or one batched after a transition. */
export function liveSessionExists(owner: SessionOwner, also?: SQL): SQL {
  return sql`exists (select 1 from ${sessions} where ${and(liveSession(owner), also)})`;
}

/** `exists (this session, deleted at or before `cutoff`)`: for another table's sweep. */
export function sessionDeletedBy(sessionId: SQLWrapper, cutoff: Date): SQL {
  return sql`exists (select 1 from ${sessions} where ${and(eq(sessions.id, sessionId), lte(sessions.deletedAt, cutoff))})`;
}

/** The live session, if there is one. */
export async function findLiveSession(db: Database, owner: SessionOwner): Promise<SessionRow | undefined> {
  const [row] = await db.select().from(sessions).where(liveSession(owner)).limit(1);
  return row;
}

/** The live session, or 404 SESSION_NOT_FOUND. */
export async function requireLiveSession(db: Database, owner: SessionOwner): Promise<SessionRow> {
  const row = await findLiveSession(db, owner);
  if (!row) throw new AppError("SESSION_NOT_FOUND");
  return row;
}
