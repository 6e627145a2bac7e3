import { and, eq, isNull, sql } from "drizzle-orm";
import type { AiEngine } from "../../ai/engine";
import { buildTipTranslationRequest, tipTranslationOutputSchema } from "../../ai/prompts/tip-translation.v1";
import { tipDeliveries, tips, tipTranslations } from "../../db/schema";
import type { Database } from "../../lib/db";
import { CodedError } from "../../lib/errors";
import type { Logger } from "../../lib/logger";
import { latestConversationLanguage, latestSessionPhase } from "../sessions/service";
import { getUser } from "../users/service";
import { localDateIn } from "./local-date";

export type Tip = { id: string; text: string; phase: number | null };
/** A tip as a user receives it: in their language (`language`, a primary tag such as "es"). */
export type LocalizedTip = Tip & { language: string };

/** What localizing a tip needs: the tips' rows, a model for a translation not made yet, a logger. */
export type TipDeps = { db: Database; engine: Pick<AiEngine, "completeStructured">; logger: Logger };

/** Who a tip is for: the user row's id and preferences (the caller has read it already). */
type TipReader = Pick<Awaited<ReturnType<typeof getUser>>, "id" | "preferences">;

/** The language the curated tips are written in. */
const CATALOG_LANGUAGE = "en";

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
export async function todaysTip(deps: TipDeps, userId: string, now: Date): Promise<{ localDate: string; tip: LocalizedTip | null }> {
  const user = await getUser(deps.db, userId);
  const localDate = localDateIn(user.timezone, now);
  return { localDate, tip: await localizedTipFor(deps, user, localDate) };
}

/**
 * The language a user's tips come in: the one they chose, else the language of their most recently
 * analysed conversation, else the catalog's. Only the primary tag counts ("es" for "es-MX").
 */
export async function tipLanguageOf(db: Database, user: TipReader): Promise<string> {
  const tag = user.preferences.language ?? (await latestConversationLanguage(db, user.id)) ?? CATALOG_LANGUAGE;
  return tag.split("-")[0]!.toLowerCase();
}

/**
 * A tip in `language`: the catalog's text for English, else its stored translation, else one made
 * now by a model and stored for every later reader (one call per tip and language, ever). A
 * failed translation gives the English tip rather than none.
 */
export async function translateTip(deps: TipDeps, tip: Tip, language: string): Promise<LocalizedTip> {
  if (language === CATALOG_LANGUAGE) return { ...tip, language };
  const [stored] = await deps.db
    .select({ text: tipTranslations.text })
    .from(tipTranslations)
    .where(and(eq(tipTranslations.tipId, tip.id), eq(tipTranslations.language, language)));
  if (stored) return { ...tip, text: stored.text, language };
  try {
    const { data } = await deps.engine.completeStructured(buildTipTranslationRequest(tip.text, language), tipTranslationOutputSchema, { kind: "tip", userId: null });
    await deps.db.insert(tipTranslations).values({ tipId: tip.id, language, text: data.text }).onConflictDoNothing();
    return { ...tip, text: data.text, language };
  } catch (error) {
    deps.logger.warn("tip translation failed; giving the tip in English", { code: error instanceof CodedError ? error.code : "INTERNAL_ERROR" });
    return { ...tip, language: CATALOG_LANGUAGE };
  }
}

/** A tip in the user's language (see `tipLanguageOf` and `translateTip`). */
export async function localizeTip(deps: TipDeps, user: TipReader, tip: Tip): Promise<LocalizedTip> {
  return translateTip(deps, tip, await tipLanguageOf(deps.db, user));
}

/** The user's tip for one local day (see `tipFor`), in their language (see `localizeTip`). */
export async function localizedTipFor(deps: TipDeps, user: TipReader, localDate: string): Promise<LocalizedTip | null> {
  const tip = await tipFor(deps.db, user.id, localDate);
  return tip ? localizeTip(deps, user, tip) : null;
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
