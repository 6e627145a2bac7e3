import type { z } from "@hono/zod-openapi";
import { and, asc, eq, gt, inArray, isNotNull, isNull, lt, lte, type SQL, sql, type SQLWrapper } from "drizzle-orm";
import { spendByKind } from "../../ai/calls";
import { pushTokens, users } from "../../db/schema";
import type { User, UserIdentity } from "../../lib/app-env";
import type { VerifiedSession } from "../../lib/auth";
import type { Database } from "../../lib/db";
import { AppError } from "../../lib/errors";
import { type OpenerInsightsJson, openerInsightsJson } from "../openers/insights";
import { type SessionInsightsJson, sessionInsightsJson } from "../sessions/insights";
import { type ToneInsightJson, toneInsightsJson } from "../suggestions/insights";
import { DEFAULT_SCREENSHOT_RETENTION, type insightsSchema, type onboardingSchema, type registerPushTokenSchema, type ScreenshotRetention, type updateUserSchema, type userSchema } from "./schemas";

type PublicUser = z.infer<typeof userSchema>;

/** The API's view of a user: no Clerk id, no soft-delete marker, dates as ISO strings. */
export function toPublicUser(user: User): PublicUser {
  return {
    id: user.id,
    email: user.email,
    firstName: user.firstName,
    lastName: user.lastName,
    gender: user.gender as PublicUser["gender"],
    lookingFor: user.lookingFor as PublicUser["lookingFor"],
    ageRange: user.ageRange as PublicUser["ageRange"],
    datingGoal: user.datingGoal as PublicUser["datingGoal"],
    // The retention in force is shown even to a user who never chose one.
    preferences: { screenshotRetention: DEFAULT_SCREENSHOT_RETENTION, ...(user.preferences as PublicUser["preferences"]) },
    timezone: user.timezone,
    dailyTipsEnabled: user.dailyTipsEnabled,
    onboardingCompleted: user.onboardingCompletedAt !== null,
    onboardingCompletedAt: user.onboardingCompletedAt?.toISOString() ?? null,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
  };
}

/**
 * "The live (not deleted) user with this Clerk id", as a subquery yielding their id (none: null),
 * for a check another feature makes in one statement (does this user own that room?).
 */
export function liveUserIdByClerkId(clerkId: string): SQL<string | null> {
  return sql<string | null>`(select ${users.id} from ${users} where ${and(eq(users.clerkId, clerkId), isNull(users.deletedAt))})`;
}

/** "The account with this id is live (not deleted)", as a condition in another feature's statement. */
export function isLiveAccount(userId: string): SQL<boolean> {
  return sql<boolean>`exists (select 1 from ${users} where ${and(eq(users.id, userId), isNull(users.deletedAt))})`;
}

/** Whether the account with this id exists and is not deleted. */
export async function accountIsLive(db: Database, userId: string): Promise<boolean> {
  const [row] = await db.select({ id: users.id }).from(users).where(and(eq(users.id, userId), isNull(users.deletedAt))).limit(1);
  return row !== undefined;
}

async function findByClerkId(db: Database, clerkId: string): Promise<User | undefined> {
  const [user] = await db.select().from(users).where(eq(users.clerkId, clerkId)).limit(1);
  return user;
}

/**
 * A deleted account stays deleted for every token issued before its deletion (a phone holds one
 * for up to a minute), and comes back only with a sign-in after it: a token whose `iat` is later
 * than `deleted_at`. An account Clerk deleted never comes back. The restore is conditional, so a
 * deletion that lands meanwhile wins over it.
 */
async function liveOrRestored(db: Database, user: User, session: VerifiedSession): Promise<User> {
  if (!user.deletedAt) return user;
  const issuedAt = session.issuedAt;
  if (user.deletedBy !== "user" || issuedAt === undefined || issuedAt <= user.deletedAt.getTime()) {
    throw new AppError("ACCOUNT_DELETED");
  }
  const [restored] = await db
    .update(users)
    .set({ deletedAt: null, deletedBy: null })
    .where(and(eq(users.id, user.id), eq(users.deletedBy, "user"), lt(users.deletedAt, new Date(issuedAt))))
    .returning();
  if (restored) return restored;
  // Either a concurrent request with a new token restored it first, or a deletion won.
  const current = await findByClerkId(db, user.clerkId);
  if (current && !current.deletedAt) return current;
  throw new AppError("ACCOUNT_DELETED");
}

/**
 * The internal user behind a verified Clerk session, created on first sight (the webhook may
 * lag); a deleted one is restored or refused (see `liveOrRestored`). Concurrent first requests
 * race on the unique clerk_id: the losers insert nothing and read the winner's row.
 */
export async function resolveUser(db: Database, session: VerifiedSession): Promise<User> {
  const existing = await findByClerkId(db, session.clerkUserId);
  if (existing) return liveOrRestored(db, existing, session);
  const [created] = await db
    .insert(users)
    .values({ clerkId: session.clerkUserId, email: session.email ?? null })
    .onConflictDoNothing()
    .returning();
  if (created) return created;
  const raced = await findByClerkId(db, session.clerkUserId);
  if (raced) return liveOrRestored(db, raced, session);
  // The email belongs to another account (e.g. a Clerk user re-created): keep the user, not the email.
  const [withoutEmail] = await db
    .insert(users)
    .values({ clerkId: session.clerkUserId })
    .onConflictDoNothing({ target: users.clerkId })
    .returning();
  return withoutEmail ?? liveOrRestored(db, (await findByClerkId(db, session.clerkUserId))!, session);
}

// Clerk id → internal id, per isolate. The mapping never changes once made, so every request
// but a user's first in an isolate skips the users query. A deletion handled in this isolate
// (DELETE /users/me, Clerk's webhook) drops the entry at once; one handled in another isolate is
// seen here within IDENTITY_TTL_MS, when the entry expires and the row is read again. (Checking
// a shared store on every request would cost each authenticated request a round trip.)
const IDENTITY_TTL_MS = 30_000;
const IDENTITY_CACHE_MAX = 10_000;
const identities = new Map<string, { identity: UserIdentity; expires: number }>();
// Counts forgets: a row read while a deletion was being handled is not cached after it.
let forgets = 0;

/** The caller's identity, provisioned on first sight; a deleted account is refused or restored (see `resolveUser`). */
export async function resolveIdentity(db: Database, session: VerifiedSession, now = Date.now()): Promise<UserIdentity> {
  const cached = identities.get(session.clerkUserId);
  if (cached && cached.expires > now) return cached.identity;
  const forgetsBefore = forgets;
  const user = await resolveUser(db, session);
  const identity = { id: user.id, clerkId: user.clerkId };
  identities.delete(session.clerkUserId);
  if (forgets !== forgetsBefore) return identity;
  // Map keeps insertion order: the first key is the oldest entry.
  if (identities.size >= IDENTITY_CACHE_MAX) identities.delete(identities.keys().next().value!);
  identities.set(session.clerkUserId, { identity, expires: now + IDENTITY_TTL_MS });
  return identity;
}

/** Drops a cached identity, so the next request re-reads the user (a deleted one is refused). */
export function forgetIdentity(clerkUserId: string): void {
  identities.delete(clerkUserId);
  forgets++;
}

export async function getUser(db: Database, userId: string): Promise<User> {
  const [user] = await db.select().from(users).where(eq(users.id, userId)).limit(1);
  if (!user) throw new AppError("NOT_FOUND", { message: "User not found" });
  return user;
}

export async function updateProfile(db: Database, userId: string, patch: z.infer<typeof updateUserSchema>): Promise<User> {
  const [user] = await db.update(users).set(patch).where(eq(users.id, userId)).returning();
  if (!user) throw new AppError("NOT_FOUND", { message: "User not found" });
  return user;
}

export async function completeOnboarding(
  db: Database,
  userId: string,
  answers: z.infer<typeof onboardingSchema>,
): Promise<User> {
  const [user] = await db
    .update(users)
    // Re-submitting onboarding updates the answers but keeps the first completion time.
    .set({ ...answers, onboardingCompletedAt: sql`coalesce(${users.onboardingCompletedAt}, now())` })
    .where(eq(users.id, userId))
    .returning();
  if (!user) throw new AppError("NOT_FOUND", { message: "User not found" });
  return user;
}

/** Marks the account deleted; the purge job removes rows and images after `purgeAfterDays`. */
export async function softDeleteUser(db: Database, userId: string, purgeAfterDays: number) {
  const [user] = await db
    .update(users)
    // A deletion already recorded keeps its time and its author (Clerk's is final).
    .set({ deletedAt: sql`coalesce(${users.deletedAt}, now())`, deletedBy: sql`coalesce(${users.deletedBy}, 'user')` })
    .where(eq(users.id, userId))
    .returning({ deletedAt: users.deletedAt });
  const deletedAt = user?.deletedAt ?? new Date();
  return { deleted: true as const, purgeAfter: new Date(deletedAt.getTime() + purgeAfterDays * 86_400_000).toISOString() };
}

/**
 * Takes the next page of accounts deleted at or before `cutoff` for the purge, in id order after
 * `afterId`: each is marked `purging`, so that no sign-in restores an account whose data is
 * going. Accounts already being purged are taken again (a purge that stopped resumes).
 */
export async function claimAccountsForPurge(db: Database, cutoff: Date, page: { afterId?: string; limit: number }): Promise<string[]> {
  const due = db
    .select({ id: users.id })
    .from(users)
    .where(and(isNotNull(users.deletedAt), lte(users.deletedAt, cutoff), page.afterId === undefined ? undefined : gt(users.id, page.afterId)))
    .orderBy(asc(users.id))
    .limit(page.limit);
  const claimed = await db.update(users).set({ deletedBy: "purging" }).where(inArray(users.id, due)).returning({ id: users.id });
  return claimed.map((row) => row.id).sort();
}

/** Whether the purge holds this account (it exists and is marked `purging`). */
export async function isBeingPurged(db: Database, userId: string): Promise<boolean> {
  const [row] = await db.select({ id: users.id }).from(users).where(and(eq(users.id, userId), eq(users.deletedBy, "purging")));
  return row !== undefined;
}

/**
 * The purge's last step: the account row and what hangs off it directly (push tokens and their
 * tickets, tip deliveries) go; AI calls keep their cost with no owner. Sessions and opener
 * generations are deleted in pages before this (their owners' services).
 */
export async function deletePurgedAccount(db: Database, userId: string): Promise<boolean> {
  const deleted = await db.delete(users).where(and(eq(users.id, userId), eq(users.deletedBy, "purging"))).returning({ id: users.id });
  return deleted.length > 0;
}

/**
 * Clerk's profile for a user (`user.created`/`user.updated`): creates the row or updates it by
 * Clerk id. A statement for the caller's batch, so it commits with the webhook's record of the event.
 */
export function upsertClerkProfileStatement(
  db: Database,
  clerkId: string,
  profile: { firstName: string | null; lastName: string | null; email?: string | null },
) {
  return db.insert(users).values({ clerkId, ...profile }).onConflictDoUpdate({ target: users.clerkId, set: profile });
}

/**
 * Clerk deleted the user (`user.deleted`). Clerk's deletion is final: recorded as Clerk's, it is
 * never restored. A user never seen gets a deleted row too, so a token still in flight cannot
 * provision the account again. A statement for the caller's batch (see above); the caller forgets
 * the cached identity once it committed.
 */
export function clerkDeletionStatement(db: Database, clerkId: string) {
  return db
    .insert(users)
    .values({ clerkId, deletedAt: sql`now()`, deletedBy: "clerk" })
    .onConflictDoUpdate({
      target: users.clerkId,
      // A purge already under way stays one: its data is partly gone.
      set: { deletedAt: sql`coalesce(${users.deletedAt}, now())`, deletedBy: sql`case when ${users.deletedBy} = 'purging' then 'purging'::account_deleted_by else 'clerk'::account_deleted_by end` },
    })
    .returning({ id: users.id });
}

/** Upserts by token: a device that changes hands (another user signs in on it) moves to the new owner. */
export async function registerPushToken(db: Database, userId: string, input: z.infer<typeof registerPushTokenSchema>) {
  const [row] = await db
    .insert(pushTokens)
    .values({ userId, token: input.token, platform: input.platform })
    .onConflictDoUpdate({
      target: pushTokens.token,
      set: { userId, platform: input.platform, disabledAt: null, updatedAt: new Date() },
    })
    .returning();
  return {
    token: row!.token,
    platform: row!.platform,
    createdAt: row!.createdAt.toISOString(),
    updatedAt: row!.updatedAt.toISOString(),
  };
}

export async function removePushToken(db: Database, userId: string, token: string): Promise<void> {
  const removed = await db
    .delete(pushTokens)
    .where(and(eq(pushTokens.token, token), eq(pushTokens.userId, userId)))
    .returning({ id: pushTokens.id });
  if (removed.length === 0) throw new AppError("NOT_FOUND", { message: "Push token not found" });
}

/** A user's push tokens that still deliver (never disabled), for sending them a notification. */
export async function liveTokensOf(db: Database, userId: string): Promise<Array<{ id: string; token: string }>> {
  return db
    .select({ id: pushTokens.id, token: pushTokens.token })
    .from(pushTokens)
    .where(and(eq(pushTokens.userId, userId), isNull(pushTokens.disabledAt)));
}

/**
 * Stops sending to these tokens (Expo said the device is gone). Idempotent: a token disabled
 * earlier keeps its first date, so a redelivered receipt changes nothing.
 */
export async function disablePushTokens(db: Database, tokenIds: readonly string[]): Promise<void> {
  if (tokenIds.length === 0) return;
  await db
    .update(pushTokens)
    .set({ disabledAt: new Date(), updatedAt: new Date() })
    .where(and(inArray(pushTokens.id, [...tokenIds]), isNull(pushTokens.disabledAt)));
}

/** Today's (UTC) AI spend from `ai_calls`, against the per-user daily budget. */
export async function usageToday(db: Database, userId: string, budgetUsd: number, now = new Date()) {
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const byKind: Record<string, { calls: number; costUsd: number }> = {};
  let calls = 0;
  let costUsd = 0;
  for (const row of await spendByKind(db, userId, dayStart)) {
    byKind[row.kind] = { calls: row.calls, costUsd: row.costUsd };
    calls += row.calls;
    costUsd += row.costUsd;
  }
  costUsd = Math.round(costUsd * 1e6) / 1e6;
  return {
    date: dayStart.toISOString().slice(0, 10),
    calls,
    costUsd,
    budgetUsd,
    remainingUsd: Math.max(0, Math.round((budgetUsd - costUsd) * 1e6) / 1e6),
    byKind,
  };
}


/** The local hour a user's daily tip arrives unless they chose another (preferences.tipHour). */
export const DEFAULT_TIP_HOUR = 9;

/**
 * Users whose daily tip is due at `at`: tips on, account live, and their local clock (their IANA
 * time zone, so daylight saving and the UTC+14 / UTC−12 edges come from Postgres' tz data) in
 * their tip hour. Each comes with that local date. A page in id order, after `afterId`, so a
 * fan-out works in bounded batches.
 */
export async function usersDueForTip(db: Database, at: Date, page: { limit: number; afterId?: string }) {
  const local = sql`(${at.toISOString()}::timestamptz at time zone ${users.timezone})`;
  return db
    .select({ id: users.id, timezone: users.timezone, localDate: sql<string>`to_char(${local}, 'YYYY-MM-DD')` })
    .from(users)
    .where(
      and(
        eq(users.dailyTipsEnabled, true),
        isNull(users.deletedAt),
        sql`extract(hour from ${local}) = coalesce((${users.preferences}->>'tipHour')::int, ${DEFAULT_TIP_HOUR})`,
        page.afterId ? sql`${users.id} > ${page.afterId}` : undefined,
      ),
    )
    .orderBy(users.id)
    .limit(page.limit);
}

const chosenRetention = sql<ScreenshotRetention | null>`${users.preferences}->>'screenshotRetention'`;

/**
 * "The screenshot retention of this user" (preferences.screenshotRetention, else the default), as
 * an expression over another statement's user id column, so a sweep reads it in the same query.
 */
export function screenshotRetentionOf(userId: SQLWrapper): SQL<ScreenshotRetention> {
  return sql<ScreenshotRetention>`coalesce((select ${chosenRetention} from ${users} where ${users.id} = ${userId}), ${DEFAULT_SCREENSHOT_RETENTION})`;
}

/** One user's screenshot retention (the default when they never chose one). */
export async function screenshotRetentionOfUser(db: Database, userId: string): Promise<ScreenshotRetention> {
  const [row] = await db.select({ retention: chosenRetention }).from(users).where(eq(users.id, userId));
  return row?.retention ?? DEFAULT_SCREENSHOT_RETENTION;
}

/**
 * The caller's own numbers (SPEC §12) in ONE statement, no AI call: each part is an expression
 * of the feature owning its tables, scoped to this user. A user with no data gets zeros, null
 * averages and empty lists.
 */
export async function insightsOf(db: Database, userId: string): Promise<z.infer<typeof insightsSchema>> {
  const { rows } = await db.execute<{ sessions: SessionInsightsJson; tones: ToneInsightJson[]; openers: OpenerInsightsJson }>(
    sql`select ${sessionInsightsJson(userId)} as sessions, ${toneInsightsJson(userId)} as tones, ${openerInsightsJson(userId)} as openers`,
  );
  const { sessions, tones, openers } = rows[0]!;
  return { sessions: sessions.sessions, interest: sessions.interest, tones, openers, languages: sessions.languages };
}
