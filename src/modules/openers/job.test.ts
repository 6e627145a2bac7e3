import { asc, eq, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { clearBucket, json, resetDatabase, signedInUser, testConfig, testDb, uploadImage } from "../../../test/helpers";
import { pngBytes } from "../../../test/images";
import { deliverJob, eventually, jobFailureCallback, resetQStash } from "../../../test/jobs";
import { injectFault, resetUpstream, upstreamRequests } from "../../../test/upstream";
import { type Frame, openSocket } from "../../../test/ws";
import { aiEngineFor } from "../../ai/engine";
import { aiCalls, magicOpeners, openerGenerations } from "../../db/schema";
import { toBase64 } from "../../lib/encoding";

/** Words only the opener prompt and the photo prompt have: how a test tells their requests apart. */
const OPENER_PROMPT = "first messages for a new match";
const PHOTO_PROMPT = "dating-profile photo";

const profile = { name: "Sam", bio: "Bouldering on weekends, bad puns on weekdays", interests: ["climbing", "ramen"] };

type Seed = { count?: number; tone?: string | null; language?: string | null; photo?: boolean; profile?: typeof profile };

/** A user, optionally an uploaded photo, and a queued opener generation, with a socket authenticated to its room. */
async function queuedGeneration(seed: Seed = {}) {
  const { token, userId } = await signedInUser();
  const photoKey = seed.photo ? await uploadImage(token) : undefined;
  const [generation] = await testDb()
    .insert(openerGenerations)
    .values({
      userId,
      profile: photoKey ? { ...(seed.profile ?? profile), photoKey } : (seed.profile ?? profile),
      tone: seed.tone === undefined ? "witty" : seed.tone,
      count: seed.count ?? 3,
      language: seed.language ?? null,
    })
    .returning();
  const generationId = generation!.id;
  const socket = await openSocket(`/api/v1/magic-openers/generations/${generationId}/ws`);
  socket.send({ type: "authenticate", token });
  await socket.frame("authenticated");
  return { token, userId, generationId, photoKey, socket };
}

const run = (generationId: string, options: { messageId?: string; retried?: number } = {}) => deliverJob("openers", { generationId }, options);
const generationRow = async (id: string) => (await testDb().select().from(openerGenerations).where(eq(openerGenerations.id, id)))[0];
const openerRows = (generationId: string) => testDb().select().from(magicOpeners).where(eq(magicOpeners.generationId, generationId)).orderBy(asc(magicOpeners.rank));
const bodyOf = (request: { body: unknown }) => JSON.stringify(request.body);
const openerRequests = async () => (await upstreamRequests()).filter((request) => bodyOf(request).includes(OPENER_PROMPT));

/** Each opener's text as the client rebuilds it from `opener.delta` frames (after the last restart). */
function streamedTexts(frames: Frame[]): string[] {
  const restartAt = frames.findLastIndex((frame) => frame.type === "generation.restarted");
  const texts: string[] = [];
  for (const frame of frames.slice(restartAt + 1)) {
    if (frame.type !== "opener.delta") continue;
    const index = frame.index as number;
    texts[index] = (texts[index] ?? "") + (frame.delta as string);
  }
  return texts;
}

const typesOf = (frames: Frame[]) => frames.map((frame) => frame.type);

describe("the magic-opener job", () => {
  beforeEach(async () => {
    await resetDatabase();
    await resetUpstream();
    await resetQStash();
    await clearBucket();
  });

  it("writes in the profile's language when no language was asked for, and records which", async () => {
    const spanish = { ...profile, bio: "Me encanta el senderismo y el café, ¿qué tal una ruta por la sierra?" };
    const { generationId, socket } = await queuedGeneration({ language: null, profile: spanish });
    expect((await run(generationId)).status).toBe(200);
    const completed = await socket.frame("opener.completed", 0, 15_000);
    expect((completed.openers as Array<{ text: string }>).map((opener) => opener.text).join(" ")).toMatch(/\b(eso|suena|cuéntame|semana|encanta|sitio|nuevo|centro|senderismo|canciones|jueves|copas)\b/u);
    expect(await generationRow(generationId)).toMatchObject({ status: "completed", language: "es" });
    // A language asked for is kept, whatever the profile's.
    const asked = await queuedGeneration({ language: "de", profile: spanish });
    expect((await run(asked.generationId)).status).toBe(200);
    await asked.socket.frame("opener.completed", 0, 15_000);
    expect(await generationRow(asked.generationId)).toMatchObject({ status: "completed", language: "de" });
  });

  it("streams the openers to the generation's room, then stores exactly `count` of them with the generation completed", async () => {
    const { userId, generationId, socket } = await queuedGeneration({ count: 3, tone: "witty", language: "pt-BR" });
    const response = await run(generationId);
    expect(await json(response)).toMatchObject({ success: true, data: { openers: 3 } });

    const completed = await socket.frame("opener.completed", 0, 15_000);
    const types = typesOf(socket.frames);
    expect(types.filter((type) => type === "opener.delta").length).toBeGreaterThan(3);
    expect(types.indexOf("opener.delta")).toBeLessThan(types.indexOf("opener.completed"));
    expect(types).not.toContain("generation.restarted");

    const saved = await openerRows(generationId);
    expect(saved.map(({ userId: owner, rank, tone, profile: stored, provider, model }) => ({ owner, rank, tone, stored, provider, model }))).toEqual(
      [0, 1, 2].map((rank) => ({ owner: userId, rank, tone: "witty", stored: profile, provider: "openai", model: "gpt-4o" })),
    );
    // What the phone assembled from the deltas is exactly what was stored, and the final frame names the rows.
    expect(streamedTexts(socket.frames)).toEqual(saved.map((row) => row.text));
    expect(completed).toMatchObject({ generationId, openers: saved.map(({ id, rank, tone, text }) => ({ id, rank, tone, text })) });
    expect(await generationRow(generationId)).toMatchObject({ status: "completed", provider: "openai", model: "gpt-4o", errorCode: null });

    // One structured call, asked for exactly three openers in the tone and language of the generation.
    const [request] = await openerRequests();
    const sent = request!.body as { messages: Array<{ role: string; content: string }>; response_format: { json_schema: { schema: { properties: { openers: object } } } } };
    expect(sent.response_format.json_schema.schema.properties.openers).toMatchObject({ minItems: 3, maxItems: 3 });
    expect(sent.messages[0]!.content).toContain("witty");
    expect(sent.messages[0]!.content).toContain('"pt-BR"');
    expect(await upstreamRequests()).toHaveLength(1);
    expect((await testDb().select({ kind: aiCalls.kind, status: aiCalls.status }).from(aiCalls))).toEqual([{ kind: "opener", status: "succeeded" }]);
  });

  it.each([1, 5])("answers with exactly %i openers when asked for that many", async (count) => {
    const { generationId, socket } = await queuedGeneration({ count });
    await run(generationId);
    expect((await socket.frame("opener.completed", 0, 15_000)).openers).toHaveLength(count);
    expect(await openerRows(generationId)).toHaveLength(count);
  });

  it("describes the photo with the vision model and passes the description, not the key, to the opener prompt", async () => {
    const { generationId, photoKey, socket } = await queuedGeneration({ photo: true });
    const description = "A person halfway up an indoor climbing wall, a dog watching from the mats.";
    await injectFault({ output: JSON.stringify({ description }) }, { match: PHOTO_PROMPT });
    await run(generationId);
    await socket.frame("opener.completed", 0, 15_000);

    const requests = await upstreamRequests();
    const photoRequest = requests.find((request) => bodyOf(request).includes(PHOTO_PROMPT));
    // The vision model (Gemini Flash by default, as for OCR) gets the uploaded image's bytes.
    expect(photoRequest?.vendor).toBe("gemini");
    expect(bodyOf(photoRequest!)).toContain(toBase64(pngBytes(1024)));
    const [openerRequest] = await openerRequests();
    expect(bodyOf(openerRequest!)).toContain(description);
    expect(requests.some((request) => bodyOf(request).includes(photoKey!))).toBe(false);
    expect(await openerRows(generationId)).toHaveLength(3);
    const kinds = await testDb().select({ kind: aiCalls.kind, model: aiCalls.model }).from(aiCalls).orderBy(asc(aiCalls.createdAt));
    expect(kinds).toEqual([
      { kind: "opener", model: "gemini-2.5-flash" },
      { kind: "opener", model: "gpt-4o" },
    ]);
  });

  it("generates without the description when every vision attempt fails, and still completes", async () => {
    const { generationId, socket } = await queuedGeneration({ photo: true });
    await injectFault({ status: 400 }, { match: PHOTO_PROMPT, times: 10 });
    expect(await json(await run(generationId))).toMatchObject({ data: { openers: 3 } });
    await socket.frame("opener.completed", 0, 15_000);
    const [openerRequest] = await openerRequests();
    expect(bodyOf(openerRequest!)).toContain('\\"photoDescription\\":null');
    expect(await generationRow(generationId)).toMatchObject({ status: "completed" });
  });

  it("cancels within a second when a socket sends cancel, aborting the upstream request and storing nothing", async () => {
    const { generationId, socket } = await queuedGeneration();
    await injectFault({ tokenDelayMs: 150 }, { match: OPENER_PROMPT });
    const running = run(generationId);
    await socket.frame("opener.delta", 0, 15_000);
    const sent = Date.now();
    socket.send({ type: "cancel", generationId });
    await socket.frame("generation.cancelled", 0, 5_000);
    expect(Date.now() - sent).toBeLessThan(1_000);
    expect(await json(await running)).toMatchObject({ data: { cancelled: true } });
    expect(await generationRow(generationId)).toMatchObject({ status: "cancelled", errorCode: null });
    expect(await openerRows(generationId)).toEqual([]);
    expect(typesOf(socket.frames)).not.toContain("opener.completed");
    const [streamed] = await openerRequests();
    await eventually(async () => (await upstreamRequests()).find((request) => request.id === streamed?.id)?.aborted, "the upstream abort");
  });

  it("announces generation.restarted when the provider fails mid-stream, and still stores exactly `count`", async () => {
    const { generationId, socket } = await queuedGeneration({ count: 4 });
    await injectFault({ cutAfterTokens: 4 }, { vendor: "openai", match: OPENER_PROMPT });
    expect(await json(await run(generationId))).toMatchObject({ data: { openers: 4 } });
    await socket.frame("opener.completed", 0, 15_000);
    const types = typesOf(socket.frames);
    expect(types.indexOf("generation.restarted")).toBeGreaterThan(types.indexOf("opener.delta"));
    const saved = await openerRows(generationId);
    expect(saved).toHaveLength(4);
    expect(streamedTexts(socket.frames)).toEqual(saved.map((row) => row.text));
  });

  it("retries an answer with the wrong number of openers, and stores exactly `count`", async () => {
    const { generationId, socket } = await queuedGeneration({ count: 3 });
    await injectFault({ output: JSON.stringify({ openers: [{ text: "Best pun you know?" }] }) }, { vendor: "openai", match: OPENER_PROMPT });
    await run(generationId);
    await socket.frame("opener.completed", 0, 15_000);
    expect(socket.frames.find((frame) => frame.type === "generation.restarted")).toMatchObject({ reason: "INVALID_OUTPUT" });
    expect(await openerRows(generationId)).toHaveLength(3);
  });

  it("ends the generation failed with AI_BUDGET_EXCEEDED when the budget is spent mid-run, before the opener call", async () => {
    const { userId, generationId, socket } = await queuedGeneration({ photo: true });
    await injectFault({ firstTokenDelayMs: 400 }, { match: PHOTO_PROMPT });
    const running = run(generationId);
    // While the photo is being described, other spend (another device, say) uses the day's budget up.
    await eventually(async () => (await upstreamRequests()).length === 1 || undefined, "the photo request");
    await testDb().insert(aiCalls).values({ userId, kind: "ocr", provider: "gemini", model: "gemini-2.5-flash", status: "succeeded", costUsd: "0.750000" });
    await aiEngineFor(testConfig(), testDb()).budget.add(userId, 0.75);

    const failed = await socket.frame("generation.failed", 0, 15_000);
    expect(failed).toMatchObject({ generationId, code: "AI_BUDGET_EXCEEDED" });
    expect(await json(await running)).toMatchObject({ data: { failed: "AI_BUDGET_EXCEEDED" } });
    expect(await generationRow(generationId)).toMatchObject({ status: "failed", errorCode: "AI_BUDGET_EXCEEDED" });
    expect(await openerRequests()).toEqual([]);
    expect(await openerRows(generationId)).toEqual([]);
  });

  it("ends the generation failed, with an event, when every provider fails", async () => {
    const { generationId, socket } = await queuedGeneration();
    await injectFault({ status: 500 }, { match: OPENER_PROMPT, times: 10 });
    expect(await json(await run(generationId))).toMatchObject({ data: { failed: "AI_UNAVAILABLE" } });
    expect(await socket.frame("generation.failed", 0, 15_000)).toMatchObject({ generationId, code: "AI_UNAVAILABLE" });
    expect(await generationRow(generationId)).toMatchObject({ status: "failed", errorCode: "AI_UNAVAILABLE" });
  });

  it("writes and publishes nothing twice when the job is delivered again, during the run or after it", async () => {
    const { generationId, socket } = await queuedGeneration();
    await injectFault({ tokenDelayMs: 30 }, { match: OPENER_PROMPT });
    const first = run(generationId, { messageId: "msg_openers_once" });
    await socket.frame("opener.delta", 0, 15_000);
    // A duplicate while the first run holds the generation: refused, so QStash tries later.
    const during = await run(generationId, { messageId: "msg_openers_once" });
    expect(during.status).toBe(503);
    expect(await json(during)).toMatchObject({ error: { code: "JOB_RUN_IN_PROGRESS" } });
    expect(await json(await first)).toMatchObject({ data: { openers: 3 } });
    await socket.frame("opener.completed", 0, 15_000);
    const frames = socket.frames.length;
    const rows = await openerRows(generationId);

    // Another message for the same generation, after it completed: nothing to do.
    expect(await json(await run(generationId, { messageId: "msg_openers_again", retried: 1 }))).toMatchObject({ data: { skipped: true } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(socket.frames.length).toBe(frames);
    expect(typesOf(socket.frames).filter((type) => type === "opener.completed")).toHaveLength(1);
    expect(await openerRows(generationId)).toEqual(rows);
    expect(await openerRequests()).toHaveLength(1);
  });
});

describe("opener runs that die", () => {
  beforeEach(async () => {
    await resetDatabase();
    await resetUpstream();
    await resetQStash();
  });

  /** A generation `streaming` under a run that stopped renewing its lease `lapsedSecondsAgo` seconds ago (negative: still live). */
  async function orphaned(lapsedSecondsAgo: number) {
    const seeded = await queuedGeneration();
    await testDb()
      .update(openerGenerations)
      .set({
        status: "streaming",
        leaseOwner: "msg_dead:run",
        leaseExpiresAt: sql`now() - make_interval(secs => ${lapsedSecondsAgo})`,
        updatedAt: sql`now() - make_interval(secs => ${Math.max(lapsedSecondsAgo, 0)})`,
      })
      .where(eq(openerGenerations.id, seeded.generationId));
    return seeded;
  }

  const failure = (generationId: string) => jobFailureCallback("openers", { generationId }, { status: 503, retried: 1 });

  it("takes over a run whose lease lapsed, telling the room to start over, and completes it", async () => {
    const { generationId, socket } = await orphaned(1);
    expect(await json(await run(generationId, { retried: 1 }))).toMatchObject({ data: { openers: 3 } });
    await socket.frame("opener.completed", 0, 15_000);
    const types = typesOf(socket.frames);
    expect(socket.frames.find((frame) => frame.type === "generation.restarted")).toMatchObject({ reason: "retry" });
    expect(types.indexOf("generation.restarted")).toBeLessThan(types.indexOf("opener.delta"));
    expect(await openerRows(generationId)).toHaveLength(3);
  });

  it("stops a run whose lease another delivery took, and lets it write nothing", async () => {
    const { generationId, socket } = await queuedGeneration();
    // Slow enough that the heartbeat (every lease third) notices the take-over mid-stream.
    await injectFault({ tokenDelayMs: 250 }, { match: OPENER_PROMPT });
    const running = run(generationId, { messageId: "msg_slow" });
    await socket.frame("opener.delta", 0, 15_000);
    await testDb().update(openerGenerations).set({ leaseOwner: "msg_other:run" }).where(eq(openerGenerations.id, generationId));
    expect(await json(await running)).toMatchObject({ data: { skipped: "lease lost" } });
    expect(await generationRow(generationId)).toMatchObject({ status: "streaming", leaseOwner: "msg_other:run" });
    expect(await openerRows(generationId)).toEqual([]);
    expect(typesOf(socket.frames)).not.toContain("opener.completed");
    expect((await openerRequests())[0]?.completed).toBe(false);
  });

  it("lets the failure callback fail a generation whose run is gone, but not one whose run is alive", async () => {
    const alive = await orphaned(-60);
    expect((await deliverJob("failed", failure(alive.generationId))).status).toBe(200);
    expect((await generationRow(alive.generationId))?.status).toBe("streaming");

    const dead = await orphaned(1);
    expect((await deliverJob("failed", failure(dead.generationId))).status).toBe(200);
    expect(await generationRow(dead.generationId)).toMatchObject({ status: "failed", errorCode: "JOB_FAILED" });
    expect(await dead.socket.frame("generation.failed")).toMatchObject({ generationId: dead.generationId, code: "JOB_FAILED" });
  });

  it("sweeps a generation whose lease lapsed long ago, and one never picked up, leaving recent ones", async () => {
    const stale = await orphaned(3 * 10 + 5);
    const recent = await orphaned(2);
    const { userId } = await signedInUser();
    const [neverStarted] = await testDb()
      .insert(openerGenerations)
      .values({ userId, profile, count: 1, updatedAt: sql`now() - interval '1 hour'`, createdAt: sql`now() - interval '1 hour'` })
      .returning();
    const [queuedNow] = await testDb().insert(openerGenerations).values({ userId, profile, count: 1 }).returning();

    expect(await json(await deliverJob("sweep-openers", {}))).toMatchObject({ data: { swept: 2 } });
    expect(await generationRow(stale.generationId)).toMatchObject({ status: "failed", errorCode: "JOB_LOST" });
    expect(await generationRow(neverStarted!.id)).toMatchObject({ status: "failed", errorCode: "JOB_LOST" });
    expect((await generationRow(recent.generationId))?.status).toBe("streaming");
    expect((await generationRow(queuedNow!.id))?.status).toBe("queued");
    expect(await stale.socket.frame("generation.failed")).toMatchObject({ generationId: stale.generationId, code: "JOB_LOST" });
  });
});
