import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, json, resetDatabase, signedInUser, testDb } from "../../../test/helpers";
import { expoPushes, expoRequests, resetExpo } from "../../../test/expo";
import { deliverJob, eventually, qstashMessages, resetQStash, useJobPump } from "../../../test/jobs";
import { loadShippedTips } from "../../../test/tips";
import { resetUpstream, upstreamRequests } from "../../../test/upstream";
import { aiCalls, pushTokens, tipDeliveries, users } from "../../db/schema";

const pushes = expoPushes;

/** A signed-in user in `timezone` with one push token (or none). */
async function tipUser(timezone: string, options: { token?: boolean; tipsEnabled?: boolean } = {}) {
  const user = await signedInUser();
  await testDb().update(users).set({ timezone, dailyTipsEnabled: options.tipsEnabled ?? true }).where(eq(users.id, user.userId));
  const pushToken = `ExponentPushToken[${crypto.randomUUID().replaceAll("-", "")}]`;
  if (options.token ?? true) await callAs(user.token, "/api/v1/users/me/push-tokens", { method: "POST", json: { token: pushToken, platform: "ios" } });
  return { ...user, pushToken };
}

describe("the daily tips", () => {
  // QStash's deliveries carried into the Worker: the fan-out's deliveries really run.
  useJobPump();
  beforeEach(async () => {
    await resetDatabase();
    await resetQStash();
    await resetExpo();
    await loadShippedTips();
  });

  it("pushes one tip to each eligible user at 09:00 their time, none on a second run, and /tips/today shows the same tip", async () => {
    const kiritimati = await tipUser("Pacific/Kiritimati"); // 09:00 there is 19:00 UTC the day before
    const utc = await tipUser("UTC");
    const optedOut = await tipUser("Pacific/Kiritimati", { tipsEnabled: false });
    const noToken = await tipUser("Pacific/Kiritimati", { token: false });

    expect((await deliverJob("daily-tips", { at: "2026-11-28T19:00:00Z" })).status).toBe(200);
    const sent = await eventually(async () => ((await pushes()).length >= 1 ? pushes() : undefined), "the push");
    // Give any second delivery time to arrive before counting.
    await eventually(async () => ((await testDb().select().from(tipDeliveries)).length >= 2 ? true : undefined), "both deliveries");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await pushes()).map((message) => message.to)).toEqual([kiritimati.pushToken]);
    expect(sent[0]?.body.length).toBeGreaterThan(10);

    const today = await json<{ localDate: string; tip: { id: string; text: string } }>(await callAs(kiritimati.token, "/api/v1/tips/today"));
    if (!today.success) throw new Error("no tip");
    // Their local date at 19:00 UTC on the 28th is the 29th; the test runs on another day, so ask for that row.
    const [delivery] = await testDb().select().from(tipDeliveries).where(eq(tipDeliveries.userId, kiritimati.userId));
    expect(delivery).toMatchObject({ localDate: "2026-11-29" });
    expect(sent[0]?.data?.tipId).toBe(delivery!.tipId);
    expect(delivery!.sentAt).not.toBeNull();
    // The user without a token has the day's tip recorded for the app, and nothing pushed.
    const [quiet] = await testDb().select().from(tipDeliveries).where(eq(tipDeliveries.userId, noToken.userId));
    expect(quiet).toMatchObject({ localDate: "2026-11-29" });
    expect(await testDb().select().from(tipDeliveries).where(eq(tipDeliveries.userId, optedOut.userId))).toEqual([]);
    expect(await testDb().select().from(tipDeliveries).where(eq(tipDeliveries.userId, utc.userId))).toEqual([]);

    // The same hour again (a redelivery, a second run): nothing more is pushed.
    expect((await deliverJob("daily-tips", { at: "2026-11-28T19:00:00Z" })).status).toBe(200);
    expect((await deliverJob("tip-delivery", { userId: kiritimati.userId, localDate: "2026-11-29" })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await pushes()).toHaveLength(1);
  });

  it("translates and pushes a user's tip once when QStash delivers the same message twice at once", async () => {
    const spanish = await tipUser("UTC");
    await testDb().update(users).set({ preferences: { language: "es" } }).where(eq(users.id, spanish.userId));
    await resetUpstream();
    const payload = { userId: spanish.userId, localDate: "2026-11-29" };
    const answers = await Promise.all([1, 2].map(() => deliverJob("tip-delivery", payload, { messageId: "msg_tip_twice" })));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    // The second delivery stops at the day's send mark, before the model is asked for a translation.
    const translations = (await upstreamRequests()).filter((request) => JSON.stringify(request.body).includes("Translate this dating tip"));
    expect(translations).toHaveLength(1);
    expect(await testDb().select().from(aiCalls).where(eq(aiCalls.kind, "tip"))).toHaveLength(1);
    expect((await pushes()).map((message) => message.to)).toEqual([spanish.pushToken]);
  });

  it("fans 250 users due in one hour out in pages of 100, one delivery each, and Expo gets every push in requests of at most 100", async () => {
    const db = testDb();
    const created = await db
      .insert(users)
      .values(Array.from({ length: 250 }, (_, i) => ({ clerkId: `user_fanout_${String(i).padStart(3, "0")}_${crypto.randomUUID()}`, timezone: "UTC" })))
      .returning({ id: users.id });
    await db.insert(pushTokens).values(created.map(({ id }, i) => ({ userId: id, token: `ExponentPushToken[fanout${i}x${crypto.randomUUID().slice(0, 8)}]`, platform: "ios" as const })));

    expect((await deliverJob("daily-tips", { at: "2026-11-29T09:00:00Z" })).status).toBe(200);
    const published = await eventually(async () => {
      const messages = await qstashMessages();
      const deliveries = messages.filter((message) => message.url.endsWith("/jobs/tip-delivery"));
      return deliveries.length === 250 ? messages : undefined;
    }, "250 deliveries published", 60_000);
    // Pages 1 and 2 were full: each handed the rest to a fan-out delivery of its own.
    expect(published.filter((message) => message.url.endsWith("/jobs/daily-tips"))).toHaveLength(2);
    await eventually(async () => ((await pushes()).length === 250 ? true : undefined), "250 pushes", 90_000);
    const requests = (await expoRequests()).filter((request) => request.path === "send");
    expect(requests.every((request) => (request.messages?.length ?? 0) <= 100)).toBe(true);
    expect(new Set((await pushes()).map((message) => message.to)).size).toBe(250);
  }, 120_000);
});
