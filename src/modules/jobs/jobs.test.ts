import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { json, resetDatabase, signedInUser, testConfig, testDb } from "../../../test/helpers";
import { deliver, jobFailureCallback, qstashMessages, resetQStash, signed } from "../../../test/jobs";
import { jobRuns, sessions, suggestionGenerations } from "../../db/schema";
import { createJobBatchPublisher, jobUrl } from "../../lib/jobs";
import { ocrJob } from "../sessions/ocr";

/** A generation waiting for its job, so a delivery that got through would visibly change it. */
async function queuedGeneration() {
  const { userId } = await signedInUser();
  const [session] = await testDb().insert(sessions).values({ userId, type: "text", status: "generating" }).returning();
  const [generation] = await testDb().insert(suggestionGenerations).values({ sessionId: session!.id, count: 1 }).returning();
  return generation!;
}

describe("/jobs/*", () => {
  beforeEach(resetDatabase);

  it("refuses a tampered body, a signature for another URL, a stale or unknown-key token and none at all, doing nothing", async () => {
    const generation = await queuedGeneration();
    const url = jobUrl(testConfig(), "suggestions");
    const body = JSON.stringify({ generationId: generation.id });
    const attempts = [
      ["tampered body", await signed({ url, body: JSON.stringify({ generationId: "other" }) })],
      ["another URL", await signed({ url: jobUrl(testConfig(), "ocr"), body })],
      ["expired", await signed({ url, body, nowSeconds: Math.floor(Date.now() / 1000) - 3600 })],
      ["unknown key", await signed({ url, body, key: "not-the-signing-key" })],
      ["garbage", "not.a.jwt"],
      ["missing", undefined],
    ] as const;
    for (const [what, signature] of attempts) {
      const response = await deliver("/jobs/suggestions", body, signature);
      expect(response.status, what).toBe(401);
      expect(await json(response)).toMatchObject({ error: { code: "JOB_SIGNATURE_INVALID" } });
    }
    expect(await testDb().select().from(jobRuns)).toEqual([]);
    const [unchanged] = await testDb().select().from(suggestionGenerations).where(eq(suggestionGenerations.id, generation.id));
    expect(unchanged?.status).toBe("queued");
  });

  it("accepts the next signing key during a key rotation, and records the message id once", async () => {
    const { userId } = await signedInUser();
    const [session] = await testDb().insert(sessions).values({ userId, type: "text", status: "ready" }).returning();
    const body = JSON.stringify({ sessionId: session!.id });
    const signature = await signed({ url: jobUrl(testConfig(), "ocr"), body, key: env.QSTASH_NEXT_SIGNING_KEY });
    const first = await deliver("/jobs/ocr", body, signature, "msg_rotation");
    expect(first.status).toBe(200);
    // The session is not waiting for OCR: the job has nothing to do and says so.
    expect(await json(first)).toMatchObject({ data: { messageId: "msg_rotation", skipped: "ready" } });
    const again = await deliver("/jobs/ocr", body, signature, "msg_rotation");
    expect(await json(again)).toMatchObject({ data: { skipped: true } });
    expect(await testDb().select().from(jobRuns)).toMatchObject([{ messageId: "msg_rotation", jobName: "ocr", status: "succeeded", attempts: 1 }]);
  });

  it("answers 400 to a signed delivery whose payload is not the job's, and 404 to an unknown job", async () => {
    const url = jobUrl(testConfig(), "ocr");
    const bad = JSON.stringify({ nope: true });
    const invalid = await deliver("/jobs/ocr", bad, await signed({ url, body: bad }));
    expect(invalid.status).toBe(400);
    expect(await json(invalid)).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    const notJson = "{";
    expect((await deliver("/jobs/ocr", notJson, await signed({ url, body: notJson }))).status).toBe(400);
    const unknownUrl = `${testConfig().PUBLIC_BASE_URL}/jobs/nothing`;
    const unknown = await deliver("/jobs/nothing", "{}", await signed({ url: unknownUrl, body: "{}" }));
    expect(unknown.status).toBe(404);
    expect(await testDb().select().from(jobRuns)).toEqual([]);
  });

  it("answers 400, not 500, to signed deliveries no handler can use: a callback of the wrong shape or not base64, dates Postgres refuses, NUL, an overlong message id", async () => {
    const sign = async (name: string, body: unknown, messageId?: string) => {
      const text = JSON.stringify(body);
      return deliver(`/jobs/${name}`, text, await signed({ url: jobUrl(testConfig(), name), body: text }), messageId);
    };
    const attempts: Array<[string, () => Promise<Response>]> = [
      ["callback of the wrong shape", () => sign("failed", { status: "x" })],
      ["callback whose source body is not base64", () => sign("failed", { status: 500, sourceMessageId: "m", url: jobUrl(testConfig(), "ocr"), sourceBody: "!!!" })],
      ["sweep as of year 0", () => sign("sweep-ocr", { at: "0000-01-01T00:00:00Z" })],
      ["tip for 2024-13-45", () => sign("tip-delivery", { userId: "abc", localDate: "2024-13-45" })],
      ["NUL in an id", () => sign("ocr", { sessionId: "a\u0000" })],
      ["message id of 3,000 characters", () => sign("ocr", { sessionId: "abc" }, "m".repeat(3_000))],
    ];
    for (const [what, attempt] of attempts) {
      const response = await attempt();
      expect(response.status, what).toBe(400);
      expect(await json(response), what).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    }
    expect(await testDb().select().from(jobRuns)).toEqual([]);
  });

  it("lets the failure callback end the work it names, once", async () => {
    const generation = await queuedGeneration();
    const callback = JSON.stringify(jobFailureCallback("suggestions", { generationId: generation.id }, { status: 500, retried: 3 }));
    const signature = await signed({ url: jobUrl(testConfig(), "failed"), body: callback });
    expect((await deliver("/jobs/failed", callback, signature, "msg_callback")).status).toBe(200);
    const [failed] = await testDb().select().from(suggestionGenerations);
    expect(failed).toMatchObject({ status: "failed", errorCode: "JOB_FAILED" });
    const [session] = await testDb().select().from(sessions);
    expect(session).toMatchObject({ status: "failed", failedFrom: "generating", errorCode: "JOB_FAILED" });
    expect(await json(await deliver("/jobs/failed", callback, signature, "msg_callback"))).toMatchObject({ data: { skipped: true } });
  });
});

describe("publishing a fan-out", () => {
  beforeEach(resetQStash);

  it("sends 250 deliveries of one job in batch requests of at most 100, one message each, deduplicated by id", async () => {
    const publish = createJobBatchPublisher(testConfig());
    const items = Array.from({ length: 250 }, (_, i) => ({ payload: { sessionId: `s${i}` }, deduplicationId: `fanout-test-${i}` }));
    const published = await publish(ocrJob, items);
    expect(published).toHaveLength(250);
    expect(new Set(published.map((message) => message.messageId)).size).toBe(250);
    const messages = (await qstashMessages()).filter((message) => message.url.endsWith("/jobs/ocr"));
    expect(messages).toHaveLength(250);
    // The same ids again: QStash keeps one message per deduplication id.
    await publish(ocrJob, items.slice(0, 10));
    expect((await qstashMessages()).filter((message) => message.url.endsWith("/jobs/ocr"))).toHaveLength(250);
  });
});
