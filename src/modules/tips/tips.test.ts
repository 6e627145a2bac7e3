import { and, asc, eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, json, resetDatabase, signedInUser, testConfig, testDb } from "../../../test/helpers";
import { shippedTipSeeds } from "../../../test/tips";
import { injectFault, resetUpstream, upstreamRequests } from "../../../test/upstream";
import { aiEngineFor } from "../../ai/engine";
import { sessions, tipDeliveries, tips, tipTranslations } from "../../db/schema";
import { createLogger } from "../../lib/logger";
import type { TipSeed } from "./catalog";
import { loadTips } from "./load";
import { localDateIn } from "./local-date";
import { chooseTip, todaysTip } from "./service";

const tipDeps = () => ({ db: testDb(), engine: aiEngineFor(testConfig(), testDb()), logger: createLogger({ level: "error" }) });

const allTips = () => testDb().select().from(tips).orderBy(asc(tips.id));
const deliveriesOf = (userId: string) => testDb().select().from(tipDeliveries).where(eq(tipDeliveries.userId, userId)).orderBy(asc(tipDeliveries.localDate));

/** YYYY-MM-DD, `days` after `date`. */
const addDays = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

async function deliver(userId: string, tipIds: string[], localDates: string[]) {
  await testDb()
    .insert(tipDeliveries)
    .values(tipIds.map((tipId, i) => ({ userId, tipId, localDate: localDates[i]! })));
}

async function sessionWithPhase(userId: string, phase: number | null, createdAt: Date) {
  await testDb().insert(sessions).values({ userId, type: "text", status: "ready", phase, createdAt });
}

let seeds: TipSeed[];

beforeEach(async () => {
  await resetDatabase();
  seeds = await shippedTipSeeds();
  await loadTips(testDb(), seeds);
});

describe("loading the tips", () => {
  it("loads the 60+ shipped tips, all active, across the four phases and general ones", async () => {
    const rows = await allTips();
    expect(rows.length).toBeGreaterThanOrEqual(60);
    expect(rows.every((row) => row.active)).toBe(true);
    expect(new Set(rows.map((row) => row.phase))).toEqual(new Set([1, 2, 3, 4, null]));
  });

  it("leaves the same rows when run again", async () => {
    const before = await allTips();
    const again = await loadTips(testDb(), await shippedTipSeeds());
    expect(again).toEqual({ total: seeds.length, written: 0, deactivated: 0 });
    expect(await allTips()).toEqual(before);
  });

  it("updates an edited tip in place, deactivates a removed one, and brings it back when it returns", async () => {
    const [removed, edited, ...rest] = seeds;
    const result = await loadTips(testDb(), [{ ...edited!, text: `${edited!.text} (edited)` }, ...rest]);
    expect(result).toMatchObject({ written: 1, deactivated: 1 });
    const rows = await allTips();
    expect(rows).toHaveLength(seeds.length);
    expect(rows.find((row) => row.id === removed!.id)!.active).toBe(false);
    expect(rows.find((row) => row.id === edited!.id)).toMatchObject({ active: true, text: `${edited!.text} (edited)` });
    expect(rows.filter((row) => !row.active)).toHaveLength(1);

    await loadTips(testDb(), seeds);
    expect((await allTips()).every((row) => row.active)).toBe(true);
  });

  it("refuses an empty set rather than deactivating every tip", async () => {
    await expect(loadTips(testDb(), [])).rejects.toThrow(/no tips/);
    expect((await allTips()).every((row) => row.active)).toBe(true);
  });
});

describe("choosing a tip", () => {
  const day = "2026-03-10";

  it("never repeats a tip within 30 days, day after day", async () => {
    const { userId } = await signedInUser();
    for (let i = 0; i < 30; i++) {
      const { tip } = await todaysTip(tipDeps(), userId, new Date(`${addDays(day, i)}T12:00:00Z`));
      expect(tip).not.toBeNull();
    }
    const rows = await deliveriesOf(userId);
    expect(rows).toHaveLength(30);
    expect(new Set(rows.map((row) => row.tipId)).size).toBe(30);
  });

  it("skips a tip given 29 days ago, and may give it again 30 days later", async () => {
    const { userId } = await signedInUser();
    // Three active tips, so that a month of deliveries can use them all up.
    const [a, b, c] = seeds;
    await loadTips(testDb(), [a!, b!, c!]);
    await deliver(userId, [a!.id, b!.id], [addDays(day, -29), addDays(day, -1)]);
    expect((await chooseTip(testDb(), userId, day))?.id).toBe(c!.id);

    await deliver(userId, [c!.id], [addDays(day, -2)]);
    expect(await chooseTip(testDb(), userId, day)).toBeNull();

    await testDb().update(tipDeliveries).set({ localDate: addDays(day, -30) }).where(and(eq(tipDeliveries.userId, userId), eq(tipDeliveries.tipId, a!.id)));
    expect((await chooseTip(testDb(), userId, day))?.id).toBe(a!.id);
  });

  it("skips inactive tips", async () => {
    const { userId } = await signedInUser();
    const first = (await chooseTip(testDb(), userId, day))!;
    await loadTips(testDb(), seeds.filter((seed) => seed.id !== first.id));
    const next = await chooseTip(testDb(), userId, day);
    expect(next?.id).not.toBe(first.id);
  });

  it("leans towards the phase of the most recent session that has one, else general tips", async () => {
    const { userId } = await signedInUser();
    expect((await chooseTip(testDb(), userId, day))?.phase).toBeNull();

    await sessionWithPhase(userId, 3, new Date("2026-03-01T10:00:00Z"));
    expect((await chooseTip(testDb(), userId, day))?.phase).toBe(3);

    await sessionWithPhase(userId, 2, new Date("2026-03-02T10:00:00Z"));
    // A newer session whose phase is not detected yet does not reset the lean.
    await sessionWithPhase(userId, null, new Date("2026-03-03T10:00:00Z"));
    expect((await chooseTip(testDb(), userId, day))?.phase).toBe(2);

    // Once every phase-2 tip was given recently, general ones come next.
    const phaseTwo = (await allTips()).filter((row) => row.phase === 2).map((row) => row.id);
    await deliver(userId, phaseTwo, phaseTwo.map((_, i) => addDays(day, -1 - i)));
    expect((await chooseTip(testDb(), userId, day))?.phase).toBeNull();
  });

  it("ignores another user's deliveries and sessions", async () => {
    const me = await signedInUser();
    const other = await signedInUser();
    const mine = await chooseTip(testDb(), me.userId, day);
    // The other user had my tip and 29 more this month, and has a phase-4 conversation.
    const theirs = [mine!.id, ...(await allTips()).map((row) => row.id).filter((id) => id !== mine!.id).slice(0, 29)];
    await deliver(other.userId, theirs, theirs.map((_, i) => addDays(day, -i)));
    await sessionWithPhase(other.userId, 4, new Date("2026-03-05T10:00:00Z"));
    expect((await chooseTip(testDb(), other.userId, day))?.id).not.toBe(mine!.id);
    expect(await chooseTip(testDb(), me.userId, day)).toEqual(mine);

    const { tip } = await todaysTip(tipDeps(), me.userId, new Date(`${day}T12:00:00Z`));
    expect(tip).toEqual({ ...mine, language: "en" });
    expect(await deliveriesOf(me.userId)).toHaveLength(1);
  });
});

describe("today's tip and the local date", () => {
  async function userIn(timezone: string) {
    const user = await signedInUser();
    const updated = await callAs(user.token, "/api/v1/users/me", { method: "PUT", json: { timezone } });
    expect(updated.status).toBe(200);
    return user;
  }

  it("uses the calendar date of the user's zone at the UTC+14 and UTC−12 edges", async () => {
    expect(localDateIn("Pacific/Kiritimati", new Date("2026-03-10T09:59:59Z"))).toBe("2026-03-10");
    expect(localDateIn("Pacific/Kiritimati", new Date("2026-03-10T10:00:00Z"))).toBe("2026-03-11");
    expect(localDateIn("Etc/GMT+12", new Date("2026-03-10T11:59:59Z"))).toBe("2026-03-09");
    expect(localDateIn("Etc/GMT+12", new Date("2026-03-10T12:00:00Z"))).toBe("2026-03-10");
    // A zone the runtime does not know counts as UTC.
    expect(localDateIn("Mars/Olympus_Mons", new Date("2026-03-10T23:30:00Z"))).toBe("2026-03-10");
  });

  it("keeps one tip through the local day and moves on at local midnight (UTC+14)", async () => {
    const { userId } = await userIn("Pacific/Kiritimati");
    // 2026-03-10 00:00 to 23:59:59 in Kiritimati.
    const morning = await todaysTip(tipDeps(), userId, new Date("2026-03-09T10:00:00Z"));
    const night = await todaysTip(tipDeps(), userId, new Date("2026-03-10T09:59:59Z"));
    const nextDay = await todaysTip(tipDeps(), userId, new Date("2026-03-10T10:00:00Z"));
    expect(morning.localDate).toBe("2026-03-10");
    expect(night).toEqual(morning);
    expect(nextDay.localDate).toBe("2026-03-11");
    expect(nextDay.tip!.id).not.toBe(morning.tip!.id);
    expect((await deliveriesOf(userId)).map((row) => [row.localDate, row.tipId, row.sentAt])).toEqual([
      ["2026-03-10", morning.tip!.id, null],
      ["2026-03-11", nextDay.tip!.id, null],
    ]);
  });

  it("keeps one tip through the local day and moves on at local midnight (UTC−12)", async () => {
    const { userId } = await userIn("Etc/GMT+12");
    const late = await todaysTip(tipDeps(), userId, new Date("2026-03-10T11:59:59Z"));
    const early = await todaysTip(tipDeps(), userId, new Date("2026-03-09T12:00:00Z"));
    const next = await todaysTip(tipDeps(), userId, new Date("2026-03-10T12:00:00Z"));
    expect(late.localDate).toBe("2026-03-09");
    expect(early).toEqual(late);
    expect(next.localDate).toBe("2026-03-10");
    expect(next.tip!.id).not.toBe(late.tip!.id);
  });

  it("GET /tips/today answers the same tip on every call, in the caller's local date, and records it unsent", async () => {
    for (const [timezone, offsetHours] of [["Pacific/Kiritimati", 14], ["Etc/GMT+12", -12], ["UTC", 0]] as const) {
      const { token, userId } = await userIn(timezone);
      const localNow = () => new Date(Date.now() + offsetHours * 3_600_000).toISOString().slice(0, 10);
      const before = localNow();
      const first = await json<{ localDate: string; tip: { id: string; text: string; phase: number | null } }>(await callAs(token, "/api/v1/tips/today"));
      const second = await json(await callAs(token, "/api/v1/tips/today"));
      const after = localNow();
      if (!first.success) throw new Error(JSON.stringify(first));
      expect([before, after]).toContain(first.data.localDate);
      expect(first.data.tip.text.length).toBeGreaterThan(20);
      expect(second).toEqual(first);
      const rows = await deliveriesOf(userId);
      expect(rows.map((row) => [row.localDate, row.tipId, row.sentAt])).toEqual([[first.data.localDate, first.data.tip.id, null]]);
    }
  });

  it("GET /tips/today returns the tip already delivered for the day (the one the push carried)", async () => {
    const { token, userId } = await signedInUser();
    const today = localDateIn("UTC", new Date());
    const pushed = (await allTips()).at(-1)!;
    await testDb().insert(tipDeliveries).values({ userId, tipId: pushed.id, localDate: today, sentAt: new Date() });
    const body = await json<{ localDate: string; tip: { id: string } }>(await callAs(token, "/api/v1/tips/today"));
    expect(body).toEqual({ success: true, data: { localDate: today, tip: { id: pushed.id, text: pushed.text, phase: pushed.phase, language: "en" } } });
  });

  it("comes in the user's conversation language, translated once per tip and language, and in the language they chose over it", async () => {
    await resetUpstream();
    const SPANISH = /\b(eso|suena|cuéntame|sobre|semana|encanta|sitio|probado|nuevo|centro|senderismo|deberíamos|canciones|jueves|copas)\b/u;
    const GERMAN = /\b(klingt|erzähl|über|wochenende|liebe|diesen|innenstadt|probiert|wäre|einem|donnerstag)\b/u;
    const translations = async () => (await upstreamRequests()).filter((request) => JSON.stringify(request.body).includes("Translate this dating tip"));
    // English by default, and no model call for it.
    const plain = await signedInUser();
    const english = await json<{ tip: { id: string; text: string; language: string } }>(await callAs(plain.token, "/api/v1/tips/today"));
    if (!english.success) throw new Error("no tip");
    expect(english.data.tip.language).toBe("en");
    expect(english.data.tip.text).toBe((await allTips()).find((tip) => tip.id === english.data.tip.id)!.text);
    expect(await translations()).toHaveLength(0);

    // A user whose latest analysed conversation is in Spanish gets the tip in Spanish, translated once.
    const speaker = await signedInUser();
    await testDb().insert(sessions).values({ userId: speaker.userId, type: "text", status: "ready", language: "es-MX", analysedAt: new Date() });
    const first = await json<{ tip: { id: string; text: string; language: string } }>(await callAs(speaker.token, "/api/v1/tips/today"));
    const again = await json(await callAs(speaker.token, "/api/v1/tips/today"));
    if (!first.success) throw new Error("no tip");
    expect(first.data.tip.language).toBe("es");
    expect(first.data.tip.text).toMatch(SPANISH);
    expect(again).toEqual(first);
    expect(await translations()).toHaveLength(1);
    expect(await testDb().select().from(tipTranslations)).toEqual([expect.objectContaining({ tipId: first.data.tip.id, language: "es", text: first.data.tip.text })]);

    // Their own choice of language wins over the conversation's.
    await callAs(speaker.token, "/api/v1/users/me", { method: "PUT", json: { preferences: { language: "de" } } });
    const chosen = await json<{ tip: { text: string; language: string } }>(await callAs(speaker.token, "/api/v1/tips/today"));
    if (!chosen.success) throw new Error("no tip");
    expect(chosen.data.tip).toMatchObject({ language: "de", text: expect.stringMatching(GERMAN) });
  });

  it("gives the tip in English when its translation fails", async () => {
    await resetUpstream();
    const speaker = await signedInUser();
    await callAs(speaker.token, "/api/v1/users/me", { method: "PUT", json: { preferences: { language: "fr" } } });
    await injectFault({ status: 400 }, { match: "Translate this dating tip", times: 20 });
    const body = await json<{ tip: { id: string; text: string; language: string } }>(await callAs(speaker.token, "/api/v1/tips/today"));
    if (!body.success) throw new Error("no tip");
    expect(body.data.tip.language).toBe("en");
    expect(body.data.tip.text).toBe((await allTips()).find((tip) => tip.id === body.data.tip.id)!.text);
    expect(await testDb().select().from(tipTranslations)).toEqual([]);
  });

  it("GET /tips/today answers a null tip when none are loaded", async () => {
    await resetDatabase();
    const { token } = await signedInUser();
    const body = await json(await callAs(token, "/api/v1/tips/today"));
    expect(body).toEqual({ success: true, data: { localDate: localDateIn("UTC", new Date()), tip: null } });
  });
});
