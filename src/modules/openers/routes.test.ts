import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, json, resetDatabase, signedInUser, testDb, uploadImage } from "../../../test/helpers";
import { qstashMessages, resetQStash, useJobPump } from "../../../test/jobs";
import { resetUpstream, upstreamRequests } from "../../../test/upstream";
import { openSocket } from "../../../test/ws";
import { aiCalls, magicOpeners, openerGenerations } from "../../db/schema";

const profile = { name: "Alex", bio: "Climber, bad at karaoke, good at dumplings", interests: ["bouldering", "dim sum"] };

async function generate(token: string, body: unknown) {
  return callAs(token, "/api/v1/magic-openers/generate", { method: "POST", json: body });
}

const openerMessages = async () => (await qstashMessages()).filter((message) => message.url.endsWith("/jobs/openers"));

/** A finished generation of `userId` with `texts` as its openers, written as the job writes them. */
async function storedGeneration(userId: string, texts: string[], createdAt = new Date()) {
  const [generation] = await testDb().insert(openerGenerations).values({ userId, profile, tone: "witty", count: texts.length, status: "completed", createdAt }).returning();
  const rows = await testDb()
    .insert(magicOpeners)
    .values(texts.map((text, rank) => ({ userId, generationId: generation!.id, rank, profile, tone: "witty", text, createdAt })))
    .returning();
  return { generationId: generation!.id, openerIds: rows.map((row) => row.id) };
}

describe("magic openers over HTTP", () => {
  beforeEach(async () => {
    await resetDatabase();
    await resetUpstream();
    await resetQStash();
  });

  it("writes the generation before answering 202, so a socket opened right after is accepted, and queues the job once", async () => {
    const { token, userId } = await signedInUser();
    const response = await generate(token, { profile });
    expect(response.status).toBe(202);
    const body = await json<{ generationId: string; wsUrl: string }>(response);
    if (!body.success) throw new Error("not started");
    const { generationId, wsUrl } = body.data;
    expect(new URL(wsUrl).pathname).toBe(`/api/v1/magic-openers/generations/${generationId}/ws`);
    expect(new URL(wsUrl).protocol).toMatch(/^wss?:$/);

    const socket = await openSocket(`/api/v1/magic-openers/generations/${generationId}/ws`);
    socket.send({ type: "authenticate", token, afterSeq: 0 });
    expect(await socket.frame("authenticated")).toMatchObject({ seq: 0 });
    socket.close();

    const [row] = await testDb().select().from(openerGenerations).where(eq(openerGenerations.id, generationId));
    // Defaults: the user's preferences, else playful and 3.
    expect(row).toMatchObject({ userId, status: "queued", tone: "playful", count: 3, profile });
    expect(await openerMessages()).toHaveLength(1);
  });

  it("takes tone, count and language from the request, and the user's preferences otherwise", async () => {
    const { token } = await signedInUser();
    const updated = await callAs(token, "/api/v1/users/me", { method: "PUT", json: { preferences: { defaultTone: "sincere", suggestionCount: 2, language: "pt-BR" } } });
    expect(updated.status).toBe(200);
    const byPreference = await json<{ generationId: string }>(await generate(token, { profile: { bio: "Loves jazz" } }));
    const byRequest = await json<{ generationId: string }>(await generate(token, { profile: { bio: "Loves jazz" }, tone: "flirty", count: 5, language: "fr" }));
    if (!byPreference.success || !byRequest.success) throw new Error("not started");
    const rows = await testDb().select().from(openerGenerations);
    expect(rows.find((row) => row.id === byPreference.data.generationId)).toMatchObject({ tone: "sincere", count: 2, language: "pt-BR" });
    expect(rows.find((row) => row.id === byRequest.data.generationId)).toMatchObject({ tone: "flirty", count: 5, language: "fr" });
  });

  it("refuses an invalid profile with 400 and writes or queues nothing", async () => {
    const { token } = await signedInUser();
    for (const body of [
      { profile: {} },
      { profile: { name: "Only a name" } },
      { profile: { bio: "x".repeat(2001) } },
      { profile: { interests: Array.from({ length: 21 }, (_, i) => `interest ${i}`) } },
      { profile: { prompts: [{ question: "Favourite food?" }] } },
      { profile: { bio: "ok", favouriteColour: "blue" } },
      { profile, count: 6 },
      { profile, tone: "sarcastic" },
      { profile, language: "english" },
    ]) {
      const response = await generate(token, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(await json(response)).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    }
    expect(await testDb().select().from(openerGenerations)).toEqual([]);
    expect(await openerMessages()).toEqual([]);
  });

  it("takes a photo only from the caller's own finished upload: another user's key is 404 and nothing is queued", async () => {
    const me = await signedInUser();
    const other = await signedInUser();
    const theirs = await uploadImage(other.token);
    const refused = await generate(me.token, { profile: { photoKey: theirs } });
    expect(refused.status).toBe(404);
    expect(await json(refused)).toMatchObject({ error: { code: "UPLOAD_NOT_FOUND" } });
    const missing = await generate(me.token, { profile: { photoKey: "u/nobody/never-uploaded.png" } });
    expect(missing.status).toBe(404);
    expect(await testDb().select().from(openerGenerations)).toEqual([]);
    expect(await openerMessages()).toEqual([]);

    const mine = await uploadImage(me.token);
    const accepted = await generate(me.token, { profile: { photoKey: mine } });
    expect(accepted.status).toBe(202);
    expect(await openerMessages()).toHaveLength(1);
  });

  it("answers 429 AI_BUDGET_EXCEEDED before anything is written, queued or sent upstream", async () => {
    const { token, userId } = await signedInUser();
    await testDb().insert(aiCalls).values({ userId, kind: "opener", provider: "openai", model: "gpt-4o", status: "succeeded", costUsd: "0.75" });
    const response = await generate(token, { profile });
    expect(response.status).toBe(429);
    expect(await json(response)).toMatchObject({ error: { code: "AI_BUDGET_EXCEEDED" } });
    expect(await testDb().select().from(openerGenerations)).toEqual([]);
    expect(await openerMessages()).toEqual([]);
    expect(await upstreamRequests()).toEqual([]);
  });

  it("lists the caller's openers newest generation first, grouped, paged by cursor, with the like state; nobody else sees them", async () => {
    const me = await signedInUser();
    const other = await signedInUser();
    const older = await storedGeneration(me.userId, ["first a", "first b"], new Date(Date.now() - 60_000));
    const newer = await storedGeneration(me.userId, ["second a", "second b", "second c"]);
    // A generation still streaming has no openers yet: not in history.
    await testDb().insert(openerGenerations).values({ userId: me.userId, profile, count: 3 });

    const first = await json<{ items: Array<{ generationId: string; openers: Array<{ text: string; liked: boolean | null }> }>; nextCursor: string | null }>(
      await callAs(me.token, "/api/v1/magic-openers?limit=1"),
    );
    if (!first.success) throw new Error("no history");
    expect(first.data.items.map((item) => item.generationId)).toEqual([newer.generationId]);
    expect(first.data.items[0]!.openers.map((opener) => opener.text)).toEqual(["second a", "second b", "second c"]);
    expect(first.data.nextCursor).not.toBeNull();
    const second = await json<{ items: Array<{ generationId: string }>; nextCursor: string | null }>(
      await callAs(me.token, `/api/v1/magic-openers?limit=1&cursor=${encodeURIComponent(first.data.nextCursor!)}`),
    );
    if (!second.success) throw new Error("no second page");
    expect(second.data).toMatchObject({ items: [{ generationId: older.generationId }], nextCursor: null });

    expect(await json(await callAs(other.token, "/api/v1/magic-openers"))).toMatchObject({ data: { items: [], nextCursor: null } });
    expect((await callAs(me.token, "/api/v1/magic-openers?cursor=garbage")).status).toBe(400);
  });

  it("lets only the owner like, clear and delete an opener; anyone else gets 404 and changes nothing", async () => {
    const me = await signedInUser();
    const other = await signedInUser();
    const { openerIds } = await storedGeneration(me.userId, ["hello", "hi"]);
    const [liked, kept] = openerIds as [string, string];

    expect(await json(await callAs(me.token, `/api/v1/magic-openers/${liked}/toggle`, { method: "POST", json: { liked: true } }))).toMatchObject({ data: { id: liked, liked: true } });
    const foreign = await callAs(other.token, `/api/v1/magic-openers/${liked}/toggle`, { method: "POST", json: { liked: false } });
    expect(foreign.status).toBe(404);
    expect(await json(foreign)).toMatchObject({ error: { code: "OPENER_NOT_FOUND" } });
    expect((await callAs(other.token, `/api/v1/magic-openers/${kept}`, { method: "DELETE" })).status).toBe(404);
    expect((await callAs(me.token, `/api/v1/magic-openers/${liked}/toggle`, { method: "POST", json: { liked: "yes" } })).status).toBe(400);
    expect(await json(await callAs(me.token, `/api/v1/magic-openers/${liked}/toggle`, { method: "POST", json: { liked: null } }))).toMatchObject({ data: { liked: null } });

    expect((await callAs(me.token, `/api/v1/magic-openers/${kept}`, { method: "DELETE" })).status).toBe(200);
    expect((await callAs(me.token, `/api/v1/magic-openers/${kept}`, { method: "DELETE" })).status).toBe(404);
    const rows = await testDb().select().from(magicOpeners);
    expect(rows.map((row) => [row.id, row.liked])).toEqual([[liked, null]]);
  });

  it("closes another user's generation socket with 4404", async () => {
    const me = await signedInUser();
    const other = await signedInUser();
    const body = await json<{ generationId: string }>(await generate(me.token, { profile }));
    if (!body.success) throw new Error("not started");
    const socket = await openSocket(`/api/v1/magic-openers/generations/${body.data.generationId}/ws`);
    socket.send({ type: "authenticate", token: other.token });
    expect(await socket.closed()).toMatchObject({ code: 4404, reason: "ROOM_NOT_FOUND" });
  });
});

describe("magic openers end to end", () => {
  // QStash's deliveries carried into the Worker, as in production: the 202's job really runs.
  useJobPump();
  beforeEach(async () => {
    await resetDatabase();
    await resetUpstream();
    await resetQStash();
  });

  it("streams the openers to a socket opened right after the 202, and the rows are in the caller's history", async () => {
    const { token } = await signedInUser();
    const started = await json<{ generationId: string; wsUrl: string }>(await generate(token, { profile, count: 2, tone: "witty" }));
    if (!started.success) throw new Error("not started");
    const { generationId, wsUrl } = started.data;
    const socket = await openSocket(new URL(wsUrl).pathname);
    // afterSeq 0: whatever the room sent before this socket went live is replayed first.
    socket.send({ type: "authenticate", token, afterSeq: 0 });
    const completed = await socket.frame("opener.completed", 0, 20_000);
    const deltas = socket.frames.filter((frame) => frame.type === "opener.delta");
    expect(deltas.length).toBeGreaterThan(2);
    const texts = [0, 1].map((index) => deltas.filter((frame) => frame.index === index).map((frame) => frame.delta).join(""));
    expect((completed.openers as Array<{ text: string }>).map((opener) => opener.text)).toEqual(texts);

    const history = await json<{ items: Array<{ generationId: string; openers: Array<{ id: string; text: string }> }> }>(await callAs(token, "/api/v1/magic-openers"));
    if (!history.success) throw new Error("no history");
    expect(history.data.items.map((item) => item.generationId)).toEqual([generationId]);
    expect(history.data.items[0]!.openers.map((opener) => opener.text)).toEqual(texts);
    const [row] = await testDb().select().from(openerGenerations).where(eq(openerGenerations.id, generationId));
    expect(row).toMatchObject({ status: "completed", tone: "witty", count: 2 });
    expect(row?.provider).not.toBeNull();
    socket.close();
  });
});
