import { eq, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, clearBucket, json, resetDatabase, signedInUser, testConfig, testDb, uploadImage } from "../../../test/helpers";
import { sessionImages } from "../../db/schema";

const MB = 1024 * 1024;

const urlFor = (token: string, size = 1024) => callAs(token, `/api/v1/sessions/upload-url?contentType=image/png&size=${size}`);

async function expectQuotaRefusal(response: Response, exceeded: string[]) {
  expect(response.status).toBe(429);
  const body = await json(response);
  expect(body).toMatchObject({ success: false, error: { code: "UPLOAD_QUOTA_EXCEEDED", details: { exceeded } } });
  const retryAfter = Number(response.headers.get("Retry-After"));
  expect(body.success ? undefined : (body.error.details as { retryAfterSeconds: number }).retryAfterSeconds).toBe(retryAfter);
  return retryAfter;
}

describe("the upload quota", () => {
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
  });

  it("refuses a URL past UPLOAD_MAX_PENDING uploads not yet in a session, until the oldest URL expires; others are not counted", async () => {
    const config = testConfig();
    expect(config.UPLOAD_MAX_PENDING).toBe(30);
    const { token, userId } = await signedInUser();
    const other = await signedInUser();
    await uploadImage(token);
    for (let i = 1; i < config.UPLOAD_MAX_PENDING; i++) expect((await urlFor(token)).status).toBe(200);

    const retryAfter = await expectQuotaRefusal(await urlFor(token), ["pending"]);
    // The first slot frees when the oldest unused URL expires (≤ 5 minutes), not when the upload's hour ends.
    expect(retryAfter).toBeGreaterThan(config.UPLOAD_URL_TTL_SECONDS - 60);
    expect(retryAfter).toBeLessThanOrEqual(config.UPLOAD_URL_TTL_SECONDS);
    // Another user's quota is their own.
    expect((await urlFor(other.token)).status).toBe(200);

    // URLs never used stop counting once they expired.
    await testDb()
      .update(sessionImages)
      .set({ urlExpiresAt: new Date(Date.now() - 1000) })
      .where(sql`${sessionImages.userId} = ${userId} and ${sessionImages.uploadedAt} is null`);
    expect((await urlFor(token)).status).toBe(200);
  });

  it("says when an uploaded but unattached image frees its slot: an hour after its URL", async () => {
    const { token, userId } = await signedInUser();
    for (let i = 0; i < 30; i++) await uploadImage(token);
    // The oldest upload is 40 minutes old: its slot frees in 20.
    const [oldest] = await testDb().select().from(sessionImages).where(eq(sessionImages.userId, userId)).limit(1);
    await testDb().update(sessionImages).set({ createdAt: new Date(Date.now() - 40 * 60_000) }).where(eq(sessionImages.id, oldest!.id));
    const retryAfter = await expectQuotaRefusal(await urlFor(token), ["pending"]);
    expect(retryAfter).toBeGreaterThan(19 * 60);
    expect(retryAfter).toBeLessThanOrEqual(20 * 60);
  });

  it("refuses a URL past UPLOAD_MAX_BYTES_PER_DAY signed in 24 h, counting the signed size, until enough ages out", async () => {
    const config = testConfig();
    expect(config.UPLOAD_MAX_BYTES_PER_DAY).toBe(200 * MB);
    const { token, userId } = await signedInUser();
    const other = await signedInUser();
    // 190 MB uploaded in the last day, attached to nothing that matters for this limit: 19 rows of 10 MB.
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);
    await testDb()
      .insert(sessionImages)
      .values(
        Array.from({ length: 19 }, (_, i) => ({
          userId,
          r2Key: `u/${userId}/day${String(i).padStart(19, "0")}.png`,
          contentType: "image/png",
          sizeBytes: 10 * MB,
          uploadedAt: hoursAgo(20 - i * 0.5),
          createdAt: hoursAgo(20 - i * 0.5),
          r2DeletedAt: hoursAgo(1),
        })),
      );
    // Under the limit: 190 + 10 = 200 MB is allowed.
    const granted = await json<{ key: string }>(await urlFor(token, 10 * MB));
    if (!granted.success) throw new Error("refused under the limit");
    // The signed size counts at once: one more byte is over, until that URL expires unused.
    const untilExpiry = await expectQuotaRefusal(await urlFor(token, 1), ["daily_bytes"]);
    expect(untilExpiry).toBeGreaterThan(config.UPLOAD_URL_TTL_SECONDS - 60);
    expect(untilExpiry).toBeLessThanOrEqual(config.UPLOAD_URL_TTL_SECONDS);

    // Once used, it counts for the day: the oldest upload (20 h ago) leaves the 24 h window in 4 h.
    const now = new Date();
    await testDb().update(sessionImages).set({ receivingAt: now, uploadedAt: now }).where(eq(sessionImages.r2Key, granted.data.key));
    const untilAgedOut = await expectQuotaRefusal(await urlFor(token, 1), ["daily_bytes"]);
    expect(untilAgedOut).toBeGreaterThan(4 * 3600 - 60);
    expect(untilAgedOut).toBeLessThanOrEqual(4 * 3600);
    expect((await urlFor(other.token, 10 * MB)).status).toBe(200);

    // Deleted screenshots still count; what left the 24 h window does not.
    await testDb().update(sessionImages).set({ createdAt: hoursAgo(25) }).where(eq(sessionImages.r2Key, `u/${userId}/day${"0".padStart(19, "0")}.png`));
    expect((await urlFor(token, 10 * MB)).status).toBe(200);
  });
});
