import { env } from "cloudflare:test";
import { eq, inArray } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, clearBucket, json, resetDatabase, signedInUser, testConfig, testDb, uploadImage } from "../../../test/helpers";
import { pngBytes } from "../../../test/images";
import { deliverJob, eventually, qstashMessages, resetQStash, useJobPump } from "../../../test/jobs";
import { injectFault, resetUpstream, upstreamRequests } from "../../../test/upstream";
import { messages, sessionImages, sessions } from "../../db/schema";
import { createRedis } from "../../lib/redis";
import type { SessionStatus } from "../sessions/lifecycle";
import { ocrCacheKey } from "../sessions/ocr-cache";

const HOUR = 3_600_000;
const later = (ms: number) => new Date(Date.now() + ms).toISOString();

type Image = { key: string; available: boolean; deletedAt: string | null };
type Detail = { status: string; messages: Array<{ text: string }>; images: Image[]; error: { code: string } | null };

/** A signed-in user with this screenshot retention (none: the default). */
async function userKeeping(retention?: "after_ocr" | "24h" | "7d" | "30d") {
  const user = await signedInUser();
  if (retention) {
    const response = await callAs(user.token, "/api/v1/users/me", { method: "PUT", json: { preferences: { screenshotRetention: retention } } });
    expect(response.status).toBe(200);
  }
  return user;
}

/** Uploads a PNG the way the app does: its key, and its bytes (distinct per seed). */
/** A session of `userId` holding these uploads and two messages, in `status` (as OCR would leave it). */
async function sessionOf(userId: string, keys: string[], status: SessionStatus = "ready") {
  const db = testDb();
  const [session] = await db.insert(sessions).values({ userId, type: "screenshot", status }).returning();
  await db.update(sessionImages).set({ sessionId: session!.id, position: 0 }).where(inArray(sessionImages.r2Key, keys));
  await db.insert(messages).values([
    { sessionId: session!.id, sender: "match", text: "Hi there", position: 0, source: "ocr" },
    { sessionId: session!.id, sender: "user", text: "Hello", position: 1, source: "ocr" },
  ]);
  return session!.id;
}

const inR2 = async (key: string) => (await env.IMAGES.head(key)) !== null;
const rowOf = async (key: string) => (await testDb().select().from(sessionImages).where(eq(sessionImages.r2Key, key)))[0];

async function sweep(at: string, messageId?: string) {
  const response = await deliverJob("screenshot-retention", { at }, { messageId });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { deleted?: number; rowsRemoved?: number; more?: boolean; skipped?: boolean } }).data;
}

async function detail(token: string, sessionId: string) {
  const body = await json<Detail>(await callAs(token, `/api/v1/sessions/${sessionId}`));
  if (!body.success) throw new Error(`get failed: ${JSON.stringify(body)}`);
  return body.data;
}

describe("screenshot retention", () => {
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
    await resetQStash();
  });

  it("keeps screenshots for 24 h by default, 7 d or 30 d as chosen: not a minute less, gone a minute after, the messages kept", async () => {
    const byDefault = await userKeeping();
    const day = await userKeeping("24h");
    const week = await userKeeping("7d");
    const month = await userKeeping("30d");
    const keys = {
      byDefault: await uploadImage(byDefault.token),
      day: await uploadImage(day.token),
      week: await uploadImage(week.token),
      month: await uploadImage(month.token),
    };
    const sessionIds = {
      byDefault: await sessionOf(byDefault.userId, [keys.byDefault]),
      day: await sessionOf(day.userId, [keys.day]),
      week: await sessionOf(week.userId, [keys.week]),
      month: await sessionOf(month.userId, [keys.month]),
    };
    expect(await json(await callAs(byDefault.token, "/api/v1/users/me"))).toMatchObject({ data: { preferences: { screenshotRetention: "24h" } } });

    const steps: Array<[at: number, gone: Array<keyof typeof keys>]> = [
      [24 * HOUR - 60_000, []],
      [24 * HOUR + 60_000, ["byDefault", "day"]],
      [7 * 24 * HOUR - 60_000, ["byDefault", "day"]],
      [7 * 24 * HOUR + 60_000, ["byDefault", "day", "week"]],
      [30 * 24 * HOUR - 60_000, ["byDefault", "day", "week"]],
      [30 * 24 * HOUR + 60_000, ["byDefault", "day", "week", "month"]],
    ];
    for (const [offset, gone] of steps) {
      await sweep(later(offset));
      for (const name of Object.keys(keys) as Array<keyof typeof keys>) {
        expect(await inR2(keys[name]), `${name} at +${offset / HOUR} h`).toBe(!gone.includes(name));
        expect((await rowOf(keys[name]))?.r2DeletedAt === null, `${name}'s row at +${offset / HOUR} h`).toBe(!gone.includes(name));
      }
    }

    const shown = await detail(week.token, sessionIds.week);
    expect(shown.messages.map((m) => m.text)).toEqual(["Hi there", "Hello"]);
    expect(shown.images).toEqual([expect.objectContaining({ key: keys.week, available: false, deletedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) })]);
    expect(await testDb().select().from(sessions)).toHaveLength(4);
  });

  it("deletes an after_ocr user's screenshots when the OCR is confirmed, and only theirs", async () => {
    const strict = await userKeeping("after_ocr");
    const relaxed = await userKeeping("7d");
    const strictKey = await uploadImage(strict.token, 1);
    const relaxedKey = await uploadImage(relaxed.token, 2);
    const strictSession = await sessionOf(strict.userId, [strictKey], "ocr_review");
    const relaxedSession = await sessionOf(relaxed.userId, [relaxedKey], "ocr_review");
    // Until the confirm, the screenshot stays (the user may still look at it).
    await sweep(later(60_000));
    expect(await inR2(strictKey)).toBe(true);

    const confirmed = await json<Detail>(await callAs(strict.token, `/api/v1/sessions/${strictSession}/confirm-ocr`, { method: "POST", json: {} }));
    expect(confirmed).toMatchObject({ success: true, data: { status: "ready", images: [{ key: strictKey, available: false }] } });
    expect(await inR2(strictKey)).toBe(false);
    expect((await detail(strict.token, strictSession)).messages).toHaveLength(2);

    expect((await callAs(relaxed.token, `/api/v1/sessions/${relaxedSession}/confirm-ocr`, { method: "POST", json: {} })).status).toBe(200);
    expect(await inR2(relaxedKey)).toBe(true);
    expect((await detail(relaxed.token, relaxedSession)).images).toEqual([expect.objectContaining({ available: true, deletedAt: null })]);
    // Nothing more for the sweep: the confirm did it.
    expect(await sweep(later(60_000))).toMatchObject({ deleted: 0 });
  });

  it("catches an after_ocr screenshot the confirm left behind, and one whose OCR is never confirmed after 24 h", async () => {
    const strict = await userKeeping("after_ocr");
    const leftBehind = await uploadImage(strict.token, 1);
    const neverConfirmed = await uploadImage(strict.token, 2);
    // Confirmed, but its screenshot is still there (the delete at confirm failed).
    await sessionOf(strict.userId, [leftBehind], "ready");
    await sessionOf(strict.userId, [neverConfirmed], "ocr_review");
    expect(await sweep(new Date().toISOString())).toMatchObject({ deleted: 1 });
    expect(await inR2(leftBehind)).toBe(false);
    expect(await inR2(neverConfirmed)).toBe(true);
    expect(await sweep(later(24 * HOUR + 60_000))).toMatchObject({ deleted: 1 });
    expect(await inR2(neverConfirmed)).toBe(false);
  });

  it("removes a deleted session's screenshots DELETED_SESSION_RETENTION_HOURS after the delete, whatever the retention", async () => {
    expect(testConfig().DELETED_SESSION_RETENTION_HOURS).toBe(24);
    const user = await userKeeping("30d");
    const key = await uploadImage(user.token);
    const sessionId = await sessionOf(user.userId, [key]);
    expect((await callAs(user.token, `/api/v1/sessions/${sessionId}`, { method: "DELETE" })).status).toBe(200);
    await sweep(later(23 * HOUR));
    expect(await inR2(key)).toBe(true);
    expect(await sweep(later(24 * HOUR + 60_000))).toMatchObject({ deleted: 1, rowsRemoved: 0 });
    expect(await inR2(key)).toBe(false);
    expect((await rowOf(key))?.r2DeletedAt).toBeInstanceOf(Date);
  });

  it("removes an upload no session took (object and row) after 1 h, an unused URL's row too, and a redelivery does nothing more", async () => {
    const user = await userKeeping("30d");
    const orphan = await uploadImage(user.token);
    const unused = await json<{ key: string }>(await callAs(user.token, "/api/v1/sessions/upload-url?contentType=image/png&size=1024"));
    if (!unused.success) throw new Error("no url");
    const kept = await uploadImage(user.token, 2);
    await sessionOf(user.userId, [kept]);

    await sweep(later(HOUR - 60_000));
    expect(await inR2(orphan)).toBe(true);
    expect(await rowOf(unused.data.key)).toBeDefined();

    const messageId = `msg_${crypto.randomUUID()}`;
    expect(await sweep(later(HOUR + 60_000), messageId)).toMatchObject({ deleted: 2, rowsRemoved: 2 });
    expect(await inR2(orphan)).toBe(false);
    expect(await rowOf(orphan)).toBeUndefined();
    expect(await rowOf(unused.data.key)).toBeUndefined();
    expect(await inR2(kept)).toBe(true);

    // The same message again (QStash at least once), and another sweep as of the same instant.
    expect(await sweep(later(HOUR + 60_000), messageId)).toMatchObject({ skipped: true });
    expect(await sweep(later(HOUR + 60_000))).toMatchObject({ deleted: 0, rowsRemoved: 0 });
    expect(await testDb().select().from(sessionImages)).toHaveLength(1);
  });

  it("refuses to OCR a session whose screenshots are gone: retry answers 410, a queued run fails the session with SCREENSHOTS_EXPIRED", async () => {
    const user = await userKeeping("24h");
    const failedKey = await uploadImage(user.token, 1);
    const queuedKey = await uploadImage(user.token, 2);
    const failed = await sessionOf(user.userId, [failedKey], "failed");
    await testDb().update(sessions).set({ failedFrom: "ocr_processing", errorCode: "OCR_FAILED" }).where(eq(sessions.id, failed));
    const queued = await sessionOf(user.userId, [queuedKey], "ocr_queued");
    await sweep(later(25 * HOUR));

    const retried = await callAs(user.token, `/api/v1/sessions/${failed}/retry`, { method: "POST" });
    expect(retried.status).toBe(410);
    expect(await json(retried)).toMatchObject({ error: { code: "SCREENSHOTS_EXPIRED" } });
    expect((await detail(user.token, failed)).status).toBe("failed");

    expect((await deliverJob("ocr", { sessionId: queued })).status).toBe(200);
    expect(await detail(user.token, queued)).toMatchObject({ status: "failed", error: { code: "SCREENSHOTS_EXPIRED" } });
  });
});

describe("the retention sweep in pages", () => {
  useJobPump();
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
    await resetQStash();
  });

  it("deletes 1,005 expired uploads as a page of 1,000 and hands the other 5 to a delivery of its own", async () => {
    const { userId } = await signedInUser();
    const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
    const keys = Array.from({ length: 1005 }, (_, i) => `u/${userId}/bulk${String(i).padStart(18, "0")}.png`);
    for (let i = 0; i < keys.length; i += 100) {
      const chunk = keys.slice(i, i + 100);
      await Promise.all(chunk.map((key) => env.IMAGES.put(key, pngBytes(64))));
      await testDb()
        .insert(sessionImages)
        .values(chunk.map((key) => ({ userId, r2Key: key, contentType: "image/png", sizeBytes: 64, uploadedAt: twoHoursAgo, createdAt: twoHoursAgo })));
    }
    const first = await sweep(new Date().toISOString());
    expect(first).toMatchObject({ deleted: 1000, rowsRemoved: 1000, more: true });
    await eventually(async () => (await testDb().select().from(sessionImages)).length === 0, "the second page");
    const listed = await env.IMAGES.list({ limit: 1000 });
    expect(listed.objects).toEqual([]);
    const followUps = (await qstashMessages()).filter((m) => m.url.endsWith("/jobs/screenshot-retention"));
    expect(followUps).toHaveLength(1);
  });
});

describe("the OCR cache", () => {
  useJobPump();
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
    await resetQStash();
    await resetUpstream();
  });

  const OCR_CALL = "Transcribe the chat";
  const screen = { matchName: "Sam", platform: "hinge", confidence: 0.9, messages: [{ sender: "match", text: "Coffee sometime?", confidence: 0.95 }] };

  async function ocrSession(token: string, key: string) {
    const created = await json<{ id: string }>(await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: [key] } }));
    if (!created.success) throw new Error(`not created: ${JSON.stringify(created)}`);
    await eventually(async () => (await detail(token, created.data.id)).status === "ocr_review", "the OCR");
    return created.data.id;
  }

  it("is per user, lives no longer than the screenshot, and leaves with it", async () => {
    const redis = createRedis(testConfig());
    const alice = await userKeeping("24h");
    const bob = await userKeeping("7d");
    await injectFault({ output: JSON.stringify(screen) }, { match: OCR_CALL, times: 2 });
    const aliceKey = await uploadImage(alice.token, 5);
    await ocrSession(alice.token, aliceKey);
    const sha256 = (await rowOf(aliceKey))!.sha256!;
    expect(await redis.exists(ocrCacheKey(alice.userId, sha256))).toBe(1);
    const ttl = await redis.ttl(ocrCacheKey(alice.userId, sha256));
    expect(ttl).toBeGreaterThan(23 * 3600);
    expect(ttl).toBeLessThanOrEqual(24 * 3600);

    // The same bytes from someone else: their own model call, not Alice's cached answer.
    const bobKey = await uploadImage(bob.token, 5);
    expect((await rowOf(bobKey))!.sha256).toBe(sha256);
    await ocrSession(bob.token, bobKey);
    const ocrCalls = (await upstreamRequests()).filter((request) => JSON.stringify(request.body).includes(OCR_CALL));
    expect(ocrCalls).toHaveLength(2);
    expect(await redis.ttl(ocrCacheKey(bob.userId, sha256))).toBeGreaterThan(6 * 24 * 3600);

    await sweep(later(24 * HOUR + 60_000));
    expect(await inR2(aliceKey)).toBe(false);
    expect(await redis.exists(ocrCacheKey(alice.userId, sha256))).toBe(0);
    expect(await redis.exists(ocrCacheKey(bob.userId, sha256))).toBe(1);
  });
});
