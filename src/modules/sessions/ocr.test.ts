import { env } from "cloudflare:test";
import { asc, eq, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, clearBucket, json, resetDatabase, signedInUser, testConfig, testDb, uploadImage } from "../../../test/helpers";
import { deliverJob, eventually, qstashMessages, redeliver, resetQStash, useJobPump } from "../../../test/jobs";
import { injectFault, resetUpstream, upstreamRequests } from "../../../test/upstream";
import { openSocket } from "../../../test/ws";
import { aiEngineFor } from "../../ai/engine";
import { aiCalls, messages, sessionImages, sessions, suggestions } from "../../db/schema";
import { roomStub } from "../../realtime/rooms";
import { sessionRoom } from "./room";

import { mergeOcrResults, type OcrResult } from "./ocr";

const screen = (pairs: Array<[sender: "user" | "match", text: string]>, extra: Partial<OcrResult> = {}): OcrResult => ({
  matchName: "Sam",
  platform: "hinge",
  confidence: 0.9,
  messages: pairs.map(([sender, text]) => ({ sender, text, confidence: 0.95 })),
  ...extra,
});

const first = screen([
  ["match", "Hey! Loved your hiking photos"],
  ["user", "Thanks! Patagonia last spring"],
  ["match", "No way. Was it cold?"],
]);
const second = screen([
  ["user", "Thanks! Patagonia last spring"],
  ["match", "No way. Was it cold?"],
  ["user", "Freezing, but worth it"],
  ["match", "Ok you have to tell me over coffee"],
]);

/** OCR calls carry the OCR prompt; faults matching it leave the other calls alone. */
const OCR_CALL = "Transcribe the chat";
const ocrRequests = async () => (await upstreamRequests()).filter((request) => JSON.stringify(request.body).includes(OCR_CALL));

async function screenshotSession(token: string, keys: string[]) {
  const created = await json<{ id: string }>(await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: keys } }));
  if (!created.success) throw new Error(`not created: ${JSON.stringify(created)}`);
  return created.data.id;
}

describe("mergeOcrResults", () => {
  it("joins screenshots in order, keeping an overlapping run once", () => {
    const merged = mergeOcrResults([first, second]);
    expect(merged.messages.map((m) => m.text)).toEqual([
      "Hey! Loved your hiking photos",
      "Thanks! Patagonia last spring",
      "No way. Was it cold?",
      "Freezing, but worth it",
      "Ok you have to tell me over coffee",
    ]);
    expect(merged).toMatchObject({ matchName: "Sam", platform: "hinge" });
  });

  it("keeps repeated messages that are not an overlap, drops empty ones, and caps at 200", () => {
    const a = screen([["user", "haha"], ["match", "haha"]]);
    const b = screen([["user", "  "], ["match", "HAHA "], ["user", "so"]]);
    expect(mergeOcrResults([a, b]).messages.map((m) => `${m.sender}:${m.text}`)).toEqual(["user:haha", "match:haha", "user:so"]);
    const long = screen(Array.from({ length: 250 }, (_, i) => ["user", `m${i}`] as ["user", string]));
    const capped = mergeOcrResults([long]).messages;
    expect(capped).toHaveLength(200);
    expect(capped[0]?.text).toBe("m50");
    expect(mergeOcrResults([screen([], { platform: "other", matchName: null })])).toMatchObject({ messages: [], platform: "other", matchName: null });
  });
});

describe("OCR job", () => {
  const pump = useJobPump();
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
    await resetUpstream();
    await resetQStash();
  });

  it("runs end to end: upload → OCR → review → confirm → generate → tokens on the socket → rows", async () => {
    const { token } = await signedInUser();
    const keys = [await uploadImage(token, 1), await uploadImage(token, 2)];
    await injectFault({ output: JSON.stringify(first) }, { match: OCR_CALL });
    await injectFault({ output: JSON.stringify(second) }, { match: OCR_CALL });
    const sessionId = await screenshotSession(token, keys);
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    socket.send({ type: "authenticate", token, afterSeq: 0 });

    const completed = await socket.frame("ocr.completed", 0, 15_000);
    expect((completed.messages as Array<{ text: string }>).map((m) => m.text)).toHaveLength(5);
    await eventually(async () => socket.frames.find((f) => f.type === "status" && f.status === "ocr_review"), "the review status");
    const statuses = socket.frames.filter((f) => f.type === "status").map((f) => [f.status, f.progress]);
    expect(statuses).toEqual([
      ["ocr_queued", undefined],
      ["ocr_processing", 0],
      ["ocr_processing", 0.5],
      ["ocr_processing", 1],
      ["ocr_review", undefined],
    ]);
    // Gemini reads screenshots first (AI_OCR_MODEL), one call per screenshot.
    expect((await ocrRequests()).map((request) => request.vendor)).toEqual(["gemini", "gemini"]);

    const review = await json<{ status: string; matchName: string; platform: string; messages: Array<{ source: string; ocrConfidence: number }> }>(
      await callAs(token, `/api/v1/sessions/${sessionId}`),
    );
    expect(review).toMatchObject({ data: { status: "ocr_review", matchName: "Sam", platform: "hinge" } });
    expect(review.success && review.data.messages.every((m) => m.source === "ocr" && m.ocrConfidence === 0.95)).toBe(true);
    const images = await testDb().select().from(sessionImages).where(eq(sessionImages.sessionId, sessionId));
    expect(images.map((image) => image.ocrStatus)).toEqual(["completed", "completed"]);

    expect((await callAs(token, `/api/v1/sessions/${sessionId}/confirm-ocr`, { method: "POST", json: {} })).status).toBe(200);
    const started = await json<{ generationId: string }>(await callAs(token, `/api/v1/sessions/${sessionId}/generate-suggestions`, { method: "POST", json: { count: 2 } }));
    if (!started.success) throw new Error("generation not started");
    const done = await socket.frame("suggestion.completed", 0, 15_000);
    expect(socket.frames.some((f) => f.type === "suggestion.delta" && f.generationId === started.data.generationId)).toBe(true);
    const rows = await testDb().select().from(suggestions).where(eq(suggestions.sessionId, sessionId));
    expect(rows.length).toBeGreaterThan(0);
    expect((done.suggestions as unknown[]).length).toBe(rows.length);
  });

  it("reads a screenshot seen before from the cache, by its hash", async () => {
    const { token } = await signedInUser();
    await injectFault({ output: JSON.stringify(first) }, { match: OCR_CALL });
    const one = await screenshotSession(token, [await uploadImage(token, 7)]);
    await eventually(async () => (await testDb().select().from(sessions).where(eq(sessions.id, one)))[0]?.status === "ocr_review", "the first OCR");
    const two = await screenshotSession(token, [await uploadImage(token, 7)]);
    await eventually(async () => (await testDb().select().from(sessions).where(eq(sessions.id, two)))[0]?.status === "ocr_review", "the second OCR");
    expect(await ocrRequests()).toHaveLength(1);
    const texts = async (id: string) => (await testDb().select().from(messages).where(eq(messages.sessionId, id)).orderBy(asc(messages.position))).map((m) => m.text);
    expect(await texts(two)).toEqual(await texts(one));
  });

  it("fails with NOT_A_CONVERSATION when the screenshots show no chat", async () => {
    const { token } = await signedInUser();
    await injectFault({ output: JSON.stringify(screen([], { matchName: null, platform: "other" })) }, { match: OCR_CALL });
    const sessionId = await screenshotSession(token, [await uploadImage(token, 3)]);
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    socket.send({ type: "authenticate", token, afterSeq: 0 });
    const failed = await eventually(async () => socket.frames.find((f) => f.type === "status" && f.status === "failed"), "the failed status");
    expect(failed).toMatchObject({ error: { code: "NOT_A_CONVERSATION" } });
    const [row] = await testDb().select().from(sessions);
    expect(row).toMatchObject({ status: "failed", failedFrom: "ocr_processing", errorCode: "NOT_A_CONVERSATION" });
    expect(await testDb().select().from(messages)).toEqual([]);
  });

  it("marks the session failed through the failure callback when the upstream fails every retry", async () => {
    const { token } = await signedInUser();
    const from = pump.answered.length;
    await injectFault({ status: 500 }, { match: OCR_CALL, times: 40 });
    const sessionId = await screenshotSession(token, [await uploadImage(token, 4)]);
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    socket.send({ type: "authenticate", token, afterSeq: 0 });
    const failed = await eventually(async () => socket.frames.find((f) => f.type === "status" && f.status === "failed"), "the failed status", 20_000);
    expect(failed).toMatchObject({ error: { code: "OCR_FAILED" } });
    const [row] = await testDb().select().from(sessions);
    expect(row).toMatchObject({ status: "failed", errorCode: "OCR_FAILED" });
    // JOB_RETRIES is 1 in tests: two deliveries answered 500, then the failure callback.
    const answers = pump.answered.slice(from).filter((answer) => answer.url.endsWith("/jobs/ocr"));
    expect(answers.map((answer) => answer.status)).toEqual([500, 500]);
    // The callback tells the room before it answers QStash, so its answer may land just after.
    await eventually(async () => pump.answered.slice(from).some((answer) => answer.url.endsWith("/jobs/failed") && answer.status === 200), "the failure callback's answer");

    // Retry queues OCR again, and this time it works.
    await resetUpstream();
    await injectFault({ output: JSON.stringify(first) }, { match: OCR_CALL });
    expect(await json(await callAs(token, `/api/v1/sessions/${sessionId}/retry`, { method: "POST" }))).toMatchObject({ data: { status: "ocr_queued" } });
    await eventually(async () => (await testDb().select().from(sessions))[0]?.status === "ocr_review", "OCR after the retry");
  });

  it("asks the budget before each screenshot: spent while reading the first, the session fails AI_BUDGET_EXCEEDED", async () => {
    const { token, userId } = await signedInUser();
    const from = pump.answered.length;
    const keys = [await uploadImage(token, 8), await uploadImage(token, 9)];
    await injectFault({ output: JSON.stringify(first), firstTokenDelayMs: 400 }, { match: OCR_CALL });
    const earlier = new Set((await qstashMessages()).map((m) => m.messageId));
    const sessionId = await screenshotSession(token, keys);
    // This session's job only: a retry of an earlier test's job may still be answered meanwhile.
    const ours = (await qstashMessages()).find((m) => m.url.endsWith("/jobs/ocr") && !earlier.has(m.messageId))!.messageId;
    await eventually(async () => (await ocrRequests()).length === 1 || undefined, "the first OCR request");
    await testDb().insert(aiCalls).values({ userId, kind: "suggestions", provider: "openai", model: "gpt-4o", status: "succeeded", costUsd: "0.750000" });
    await aiEngineFor(testConfig(), testDb()).budget.add(userId, 0.75);

    const failed = await eventually(async () => {
      const [row] = await testDb().select().from(sessions).where(eq(sessions.id, sessionId));
      return row?.status === "failed" ? row : undefined;
    }, "the failed session");
    expect(failed).toMatchObject({ failedFrom: "ocr_processing", errorCode: "AI_BUDGET_EXCEEDED" });
    expect(await ocrRequests()).toHaveLength(1);
    // A spent budget is not worth QStash's retries: the job answered once, and done.
    const answers = await eventually(async () => {
      const ocr = pump.answered.slice(from).filter((answer) => answer.messageId === ours);
      return ocr.length > 0 ? ocr : undefined;
    }, "the job's answer");
    expect(answers).toHaveLength(1);
    expect(answers[0]?.status).toBe(200);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ data: { failed: "AI_BUDGET_EXCEEDED" } });
  });

  it("does nothing twice when QStash delivers the OCR job again", async () => {
    const { token } = await signedInUser();
    await injectFault({ output: JSON.stringify(first) }, { match: OCR_CALL });
    const sessionId = await screenshotSession(token, [await uploadImage(token, 5)]);
    const [message] = (await qstashMessages()).filter((m) => m.url.endsWith("/jobs/ocr"));
    // The job answers after its last broadcast: only then is the room's log complete.
    await eventually(async () => pump.answered.find((answer) => answer.messageId === message!.messageId), "the first delivery's answer");
    expect((await testDb().select().from(sessions))[0]?.status).toBe("ocr_review");
    const rows = await testDb().select().from(messages);
    const events = await roomEvents(sessionId);
    await redeliver(message!.messageId);
    const second = await eventually(async () => pump.answered.filter((answer) => answer.messageId === message!.messageId)[1], "the redelivery");
    expect(JSON.parse(second.body)).toMatchObject({ data: { skipped: true } });
    expect(await testDb().select().from(messages)).toEqual(rows);
    expect(await roomEvents(sessionId)).toEqual(events);
    expect(await ocrRequests()).toHaveLength(1);
  });
});

function roomEvents(sessionId: string) {
  return roomStub(env, sessionRoom(sessionId)).eventsAfter(0);
}

describe("OCR runs hold a lease", () => {
  // No job pump here: each delivery is made by the test, at the moment it wants.
  beforeEach(async () => {
    await resetDatabase();
    await resetUpstream();
    await resetQStash();
    await clearBucket();
  });

  /** A screenshot session whose OCR run died, its lease lapsed `lapsedSecondsAgo` seconds ago (negative: still live). */
  async function orphanedOcr(lapsedSecondsAgo: number) {
    const { token } = await signedInUser();
    const sessionId = await screenshotSession(token, [await uploadImage(token, 9)]);
    await testDb()
      .update(sessions)
      .set({
        status: "ocr_processing",
        leaseOwner: "msg_dead:run",
        leaseExpiresAt: sql`now() - make_interval(secs => ${lapsedSecondsAgo})`,
        updatedAt: sql`now() - make_interval(secs => ${Math.max(lapsedSecondsAgo, 0)})`,
      })
      .where(eq(sessions.id, sessionId));
    return sessionId;
  }
  const statusOf = async (sessionId: string) => (await testDb().select().from(sessions).where(eq(sessions.id, sessionId)))[0];

  it("refuses a redelivery with 503 while a live run reads the screenshots, and takes over once its lease lapsed", async () => {
    const live = await orphanedOcr(-60);
    const refused = await deliverJob("ocr", { sessionId: live });
    expect(refused.status).toBe(503);
    expect(await json(refused)).toMatchObject({ error: { code: "JOB_RUN_IN_PROGRESS" } });
    expect(await ocrRequests()).toEqual([]);

    await injectFault({ output: JSON.stringify(first) }, { match: OCR_CALL });
    const dead = await orphanedOcr(1);
    const taken = await deliverJob("ocr", { sessionId: dead }, { retried: 1 });
    expect(await json(taken)).toMatchObject({ data: { messages: 3 } });
    expect(await statusOf(dead)).toMatchObject({ status: "ocr_review" });
  });

  it("sweeps OCR runs whose lease lapsed long ago into failed, leaving recent ones", async () => {
    const stale = await orphanedOcr(3 * 10 + 5);
    const recent = await orphanedOcr(2);
    expect(await json(await deliverJob("sweep-ocr", {}))).toMatchObject({ data: { swept: 1 } });
    expect(await statusOf(stale)).toMatchObject({ status: "failed", failedFrom: "ocr_processing", errorCode: "OCR_FAILED" });
    expect((await statusOf(recent))?.status).toBe("ocr_processing");
    // Run as if a minute later: the recent run is stale by then.
    expect(await json(await deliverJob("sweep-ocr", { at: new Date(Date.now() + 60_000).toISOString() }))).toMatchObject({ data: { swept: 1 } });
    expect((await statusOf(recent))?.status).toBe("failed");
  });
});
