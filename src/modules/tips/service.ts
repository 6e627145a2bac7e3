import { and, eq, isNull, sql } from "drizzle-orm";
import { tipDeliveries, tips } from "../../db/schema";
import type { Database } from "../../lib/db";
import { latestSessionPhase } from "../sessions/service";
import { getUser } from "../users/service";
import { localDateIn } from "./local-date";

export type Tip = { id: string; text: string; phase: number | null };

/** A tip comes back at the earliest this many days after it was delivered. */
export const REPEAT_AFTER_DAYS = 30;

const tipColumns = { id: tips.id, text: tips.text, phase: tips.phase };

/**
 * The tip for `userId` on `localDate`: an active one they were not given in the last 30 days,
 * from the phase of their most recent session that has one, else a general tip, else any. Ties
 * break on a hash of (tip, user), so the choice is stable for the same inputs yet differs between
 * users. Null only when every active tip was given in the window (or none are loaded).
 */
export async function chooseTip(db: Database, userId: string, localDate: string): Promise<Tip | null> {
  const phase = await latestSessionPhase(db, userId);
  const recent = db
    .select({ tipId: tipDeliveries.tipId })
    .from(tipDeliveries)
    .where(and(eq(tipDeliveries.userId, userId), sql`${tipDeliveries.localDate} > ${localDate}::date - ${REPEAT_AFTER_DAYS}::int`));
  const [tip] = await db
    .select(tipColumns)
    .from(tips)
    .where(and(eq(tips.active, true), sql`${tips.id} not in ${recent}`))
    .orderBy(
      sql`case when ${tips.phase} = ${phase}::smallint then 0 when ${tips.phase} is null then 1 else 2 end`,
      sql`md5(${tips.id} || ${userId})`,
    )
    .limit(1);
  return tip ?? null;
}

async function deliveredOn(db: Database, userId: string, localDate: string): Promise<Tip | null> {
  const [tip] = await db
    .select(tipColumns)
    .from(tipDeliveries)
    .innerJoin(tips, eq(tips.id, tipDeliveries.tipId))
    .where(and(eq(tipDeliveries.userId, userId), eq(tipDeliveries.localDate, localDate)))
    .limit(1);
  return tip ?? null;
}

/**
 * The caller's tip for their local day (users.timezone at `now`): the one already delivered, or a
 * fresh choice recorded as that day's delivery with sent_at null. The row is unique per (user,
 * local date), so the daily push later carries this same tip, and two racing requests agree.
 */
export async function todaysTip(db: Database, userId: string, now: Date): Promise<{ localDate: string; tip: Tip | null }> {
  const user = await getUser(db, userId);
  const localDate = localDateIn(user.timezone, now);
  return { localDate, tip: await tipFor(db, userId, localDate) };
}

/**
 * The user's tip for one local day: the one already recorded, or a fresh choice recorded now.
 * The row is unique per (user, local date), so every caller — the app, the push — gets the same.
 */
export async function tipFor(db: Database, userId: string, localDate: string): Promise<Tip | null> {
  const delivered = await deliveredOn(db, userId, localDate);
  if (delivered) return delivered;
  const chosen = await chooseTip(db, userId, localDate);
  if (!chosen) return null;
  await db.insert(tipDeliveries).values({ userId, tipId: chosen.id, localDate }).onConflictDoNothing({ target: [tipDeliveries.userId, tipDeliveries.localDate] });
  return deliveredOn(db, userId, localDate);
}

/** Marks the day's tip sent; true for exactly one caller, so a redelivered job never pushes twice. */
export async function claimTipSend(db: Database, userId: string, localDate: string): Promise<boolean> {
  const claimed = await db
    .update(tipDeliveries)
    .set({ sentAt: new Date() })
    .where(and(eq(tipDeliveries.userId, userId), eq(tipDeliveries.localDate, localDate), isNull(tipDeliveries.sentAt)))
    .returning({ id: tipDeliveries.id });
  return claimed.length > 0;
}
