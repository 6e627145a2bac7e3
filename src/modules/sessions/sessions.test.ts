import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { asc, eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { call, callAs, clearBucket, json, resetDatabase, signedInUser, testDb, uploadImage } from "../../../test/helpers";
import { createApp } from "../../app";
import { aiCalls, messages, sessionImages, sessions, suggestionGenerations, suggestions } from "../../db/schema";
import type { Bindings } from "../../lib/env";
import { createLogger } from "../../lib/logger";
import { parseRoomFrames } from "../../realtime/protocol";
import { createBroadcast, roomStub } from "../../realtime/rooms";
import { sessionRoom } from "./room";

import { sessionTransitions, type SessionStatus, transitionSession } from "./lifecycle";

type Message = { id: string; sender: string; text: string; position: number; source: string };
type Session = {
  id: string;
  status: SessionStatus;
  type: string;
  messages: Message[];
  images: Array<{ key: string; position: number }>;
  latestGeneration: null | { id: string; suggestions: Array<{ rank: number; text: string }> };
  wsUrl: string;
  error: null | { code: string };
};

const conversation = (n: number) => Array.from({ length: n }, (_, i) => ({ sender: i % 2 ? "match" : "user", text: `message ${i}` }));

async function textSession(token: string, n = 3, extra: Record<string, unknown> = {}): Promise<Session> {
  const response = await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages: conversation(n), ...extra } });
  const body = await json<Session>(response);
  if (response.status !== 201 || !body.success) throw new Error(`create failed: ${JSON.stringify(body)}`);
  return body.data;
}

async function positions(sessionId: string) {
  const rows = await testDb().select().from(messages).where(eq(messages.sessionId, sessionId)).orderBy(asc(messages.position));
  return rows.map((row) => ({ position: row.position, text: row.text }));
}

async function setStatus(sessionId: string, status: SessionStatus, failedFrom: SessionStatus | null = null) {
  await testDb().update(sessions).set({ status, failedFrom, errorCode: status === "failed" ? "JOB_LOST" : null }).where(eq(sessions.id, sessionId));
}

async function statusEvents(sessionId: string): Promise<unknown[]> {
  const events = parseRoomFrames(await roomStub(env, sessionRoom(sessionId)).eventsAfter(0));
  return events.filter((event) => event.type === "status").map((event) => event.status);
}

describe("sessions API", () => {
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
  });

  it("creates a text session that is ready at once, with dense positions and its WebSocket URL", async () => {
    const { token, userId } = await signedInUser();
    const session = await textSession(token, 3, { title: "Sam from Hinge", platform: "hinge", matchName: "Sam" });
    expect(session).toMatchObject({ type: "text", status: "ready", error: null, images: [], latestGeneration: null });
    expect(session.messages.map((m) => [m.position, m.sender, m.text, m.source])).toEqual([
      [0, "user", "message 0", "manual"],
      [1, "match", "message 1", "manual"],
      [2, "user", "message 2", "manual"],
    ]);
    expect(session.wsUrl).toBe(`ws://127.0.0.1:8787/api/v1/sessions/${session.id}/ws`);
    const [row] = await testDb().select().from(sessions).where(eq(sessions.id, session.id));
    expect(row).toMatchObject({ userId, title: "Sam from Hinge", platform: "hinge", matchName: "Sam", status: "ready" });
  });

  it("creates a screenshot session from the caller's uploads, in key order, and queues OCR (Postgres, then the room)", async () => {
    const { token } = await signedInUser();
    const keys = [await uploadImage(token), await uploadImage(token)].reverse();
    const response = await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: keys } });
    expect(response.status).toBe(201);
    const body = await json<Session>(response);
    if (!body.success) throw new Error("failed");
    expect(body.data.status).toBe("ocr_queued");
    expect(body.data.images.map((image) => [image.key, image.position])).toEqual([
      [keys[0], 0],
      [keys[1], 1],
    ]);
    expect(await statusEvents(body.data.id)).toEqual(["ocr_queued"]);
  });

  it("refuses uploads that are someone else's, unknown, gone from R2 or already used, creating nothing", async () => {
    const { token } = await signedInUser();
    const other = await signedInUser();
    const theirs = await uploadImage(other.token);
    const mine = await uploadImage(token);
    const gone = await uploadImage(token);
    await env.IMAGES.delete(gone);
    const cases: Array<[string[], number, string]> = [
      [[theirs], 404, "UPLOAD_NOT_FOUND"],
      [[mine, "u/nobody/xxxxxxxxxxxxxxxxxxxxxx.png"], 404, "UPLOAD_NOT_FOUND"],
      [[gone], 404, "UPLOAD_NOT_FOUND"],
    ];
    for (const [imageKeys, status, code] of cases) {
      const response = await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys } });
      expect(response.status).toBe(status);
      expect(await json(response)).toMatchObject({ error: { code } });
    }
    expect(await testDb().select().from(sessions)).toEqual([]);

    expect((await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: [mine] } })).status).toBe(201);
    const again = await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: [mine] } });
    expect(again.status).toBe(409);
    expect(await json(again)).toMatchObject({ error: { code: "UPLOAD_ALREADY_USED" } });
    expect(await testDb().select().from(sessions)).toHaveLength(1);
  });

  it("answers 429 AI_BUDGET_EXCEEDED to a screenshot session once the day's AI budget is spent, leaving the upload unclaimed", async () => {
    const { token, userId } = await signedInUser();
    const key = await uploadImage(token);
    await testDb().insert(aiCalls).values({ userId, kind: "ocr", provider: "gemini", model: "gemini-2.5-flash", status: "succeeded", costUsd: "0.75" });
    const response = await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: [key] } });
    expect(response.status).toBe(429);
    expect(await json(response)).toMatchObject({ error: { code: "AI_BUDGET_EXCEEDED" } });
    expect(await testDb().select().from(sessions)).toEqual([]);
    const [image] = await testDb().select().from(sessionImages);
    expect(image?.sessionId).toBeNull();
    // Text sessions spend nothing on OCR and are still allowed.
    expect((await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages: conversation(1) } })).status).toBe(201);
  });

  it("gives each upload to one session when two creations race for it", async () => {
    const { token } = await signedInUser();
    const key = await uploadImage(token);
    const create = () => callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: [key] } });
    const statuses = (await Promise.all([create(), create(), create()])).map((response) => response.status).sort();
    expect(statuses).toEqual([201, 409, 409]);
    expect(await testDb().select().from(sessions)).toHaveLength(1);
    const [image] = await testDb().select().from(sessionImages);
    expect(image?.sessionId).toBeTruthy();
  });

  it("validates the body: sizes, duplicates, unknown fields and types", async () => {
    const { token } = await signedInUser();
    const bodies = [
      { type: "text", messages: [] },
      { type: "text", messages: conversation(201) },
      { type: "text", messages: [{ sender: "them", text: "hi" }] },
      { type: "text", messages: [{ sender: "user", text: "   " }] },
      { type: "screenshot", imageKeys: [] },
      { type: "screenshot", imageKeys: ["a", "a"] },
      { type: "screenshot", imageKeys: Array.from({ length: 11 }, (_, i) => `k${i}`) },
      { type: "video" },
      { type: "text", messages: conversation(1), userId: "someone-else" },
    ];
    for (const body of bodies) {
      const response = await callAs(token, "/api/v1/sessions", { method: "POST", json: body });
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(await json(response)).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    }
    expect(await testDb().select().from(sessions)).toEqual([]);
  });

  it("answers 400, not 500, to what Postgres cannot store: NUL, unpaired surrogates, years outside 1–9999, positions past any conversation", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 2);
    const message = session.messages[0]!.id;
    const attempts: Array<[string, string, string, unknown]> = [
      ["NUL in a message", "POST", "/api/v1/sessions", { type: "text", messages: [{ sender: "user", text: "hi\u0000there" }] }],
      ["unpaired surrogate in a message", "POST", "/api/v1/sessions", { type: "text", messages: [{ sender: "user", text: "hi \ud800" }] }],
      ["NUL in the title", "POST", "/api/v1/sessions", { type: "text", messages: conversation(1), title: "a\u0000" }],
      ["year 0", "POST", "/api/v1/sessions", { type: "text", messages: [{ sender: "user", text: "hi", sentAt: "0000-01-01T00:00:00Z" }] }],
      ["year 10000 through an offset", "POST", `/api/v1/sessions/${session.id}/messages`, { sender: "user", text: "hi", sentAt: "9999-12-31T23:59:59-23:59" }],
      ["position 2^31", "POST", `/api/v1/sessions/${session.id}/messages`, { sender: "user", text: "hi", position: 2 ** 31 }],
      ["position 2^53 - 1", "PATCH", `/api/v1/sessions/${session.id}/messages/${message}`, { position: Number.MAX_SAFE_INTEGER }],
      ["NUL in an edit", "PATCH", `/api/v1/sessions/${session.id}/messages/${message}`, { text: "\u0000" }],
    ];
    for (const [what, method, path, body] of attempts) {
      const response = await callAs(token, path, { method, json: body });
      expect(response.status, what).toBe(400);
      expect(await json(response), what).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    }
    expect(await positions(session.id)).toEqual([
      { position: 0, text: "message 0" },
      { position: 1, text: "message 1" },
    ]);
  });

  it("pages newest first with a cursor that neither repeats nor skips while sessions are added", async () => {
    const { token } = await signedInUser();
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await textSession(token, 1)).id);
    const page = async (cursor?: string) => {
      const body = await json<{ items: Array<{ id: string }>; nextCursor: string | null }>(
        await callAs(token, `/api/v1/sessions?limit=2${cursor ? `&cursor=${cursor}` : ""}`),
      );
      if (!body.success) throw new Error("list failed");
      return body.data;
    };
    const first = await page();
    expect(first.items.map((s) => s.id)).toEqual([created[4], created[3]]);
    await textSession(token, 1);
    await textSession(token, 1);
    const second = await page(first.nextCursor!);
    expect(second.items.map((s) => s.id)).toEqual([created[2], created[1]]);
    const third = await page(second.nextCursor!);
    expect(third.items.map((s) => s.id)).toEqual([created[0]]);
    expect(third.nextCursor).toBeNull();

    const other = await signedInUser();
    expect((await json<{ items: unknown[] }>(await callAs(other.token, "/api/v1/sessions"))).success && (await json<{ items: unknown[] }>(await callAs(other.token, "/api/v1/sessions")))).toMatchObject({ data: { items: [] } });
    // Dates JS parses and Postgres does not (year 0, a bare year, past year 9999), and ids no row has.
    const junk = [["0000-01-01T00:00:00.000000Z", "x"], ["2030", "x"], ["+275760-09-13T00:00:00.000Z", "x"], ["2024-02-30T00:00:00.000000Z", "x"], ["2024-01-01T00:00:00.000000Z", "x\u0000"]];
    for (const cursor of ["garbage", btoa("[1,2]"), btoa('["not a date","x"]'), ...junk.map((value) => btoa(JSON.stringify(value)))]) {
      const response = await callAs(token, `/api/v1/sessions?cursor=${encodeURIComponent(cursor)}`);
      expect(response.status).toBe(400);
      expect(await json(response)).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    }
  });

  it("returns a session with its messages, images and latest generation's suggestions", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 2);
    const db = testDb();
    const [older] = await db.insert(suggestionGenerations).values({ sessionId: session.id, count: 1, status: "completed", createdAt: new Date(Date.now() - 60_000) }).returning();
    const [latest] = await db.insert(suggestionGenerations).values({ sessionId: session.id, count: 2, status: "completed", tone: "playful" }).returning();
    await db.insert(suggestions).values([
      { generationId: older!.id, sessionId: session.id, rank: 0, text: "old" },
      { generationId: latest!.id, sessionId: session.id, rank: 1, text: "second" },
      { generationId: latest!.id, sessionId: session.id, rank: 0, text: "first" },
    ]);
    const body = await json<Session>(await callAs(token, `/api/v1/sessions/${session.id}`));
    if (!body.success) throw new Error("get failed");
    expect(body.data.messages).toHaveLength(2);
    expect(body.data.latestGeneration).toMatchObject({ id: latest!.id, tone: "playful", count: 2, suggestions: [{ rank: 0, text: "first" }, { rank: 1, text: "second" }] });
  });

  it("answers 404 on every route for another user's session, and changes nothing", async () => {
    const owner = await signedInUser();
    const session = await textSession(owner.token, 2);
    const { token } = await signedInUser();
    const messageId = session.messages[0]!.id;
    const attempts: Array<[string, string, unknown?]> = [
      ["GET", `/api/v1/sessions/${session.id}`],
      ["DELETE", `/api/v1/sessions/${session.id}`],
      ["POST", `/api/v1/sessions/${session.id}/confirm-ocr`, {}],
      ["POST", `/api/v1/sessions/${session.id}/retry`],
      ["POST", `/api/v1/sessions/${session.id}/messages`, { sender: "user", text: "mine now" }],
      ["PATCH", `/api/v1/sessions/${session.id}/messages/${messageId}`, { text: "changed" }],
      ["DELETE", `/api/v1/sessions/${session.id}/messages/${messageId}`],
    ];
    for (const [method, path, body] of attempts) {
      const response = await callAs(token, path, { method, json: body });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(await json(response)).toMatchObject({ error: { code: "SESSION_NOT_FOUND" } });
    }
    expect(await positions(session.id)).toEqual([
      { position: 0, text: "message 0" },
      { position: 1, text: "message 1" },
    ]);
    expect((await callAs(owner.token, `/api/v1/sessions/${session.id}`)).status).toBe(200);
    expect((await callAs(token, "/api/v1/sessions/NOT-AN-ID")).status).toBe(400);
  });

  it("soft-deletes: the session disappears from the API but the row stays for the purge", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token);
    expect((await callAs(token, `/api/v1/sessions/${session.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await callAs(token, `/api/v1/sessions/${session.id}`)).status).toBe(404);
    expect((await callAs(token, `/api/v1/sessions/${session.id}`, { method: "DELETE" })).status).toBe(404);
    const list = await json<{ items: unknown[] }>(await callAs(token, "/api/v1/sessions"));
    expect(list).toMatchObject({ data: { items: [] } });
    const [row] = await testDb().select().from(sessions).where(eq(sessions.id, session.id));
    expect(row?.deletedAt).toBeInstanceOf(Date);
  });
});

describe("messages", () => {
  beforeEach(resetDatabase);

  it("inserts, edits, moves and deletes while keeping positions dense", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 3);
    const base = `/api/v1/sessions/${session.id}/messages`;
    const added = await json<Message>(await callAs(token, base, { method: "POST", json: { sender: "match", text: "at the end" } }));
    expect(added).toMatchObject({ success: true, data: { position: 3, source: "manual" } });
    const first = await callAs(token, base, { method: "POST", json: { sender: "user", text: "at the start", position: 0 } });
    expect(first.status).toBe(201);
    expect((await positions(session.id)).map((m) => m.text)).toEqual(["at the start", "message 0", "message 1", "message 2", "at the end"]);

    const target = session.messages[2]!.id;
    const edited = await json<Message>(await callAs(token, `${base}/${target}`, { method: "PATCH", json: { text: "edited", sender: "match" } }));
    expect(edited).toMatchObject({ data: { text: "edited", sender: "match", position: 3 } });
    await callAs(token, `${base}/${target}`, { method: "PATCH", json: { position: 0 } });
    expect((await positions(session.id)).map((m) => m.text)).toEqual(["edited", "at the start", "message 0", "message 1", "at the end"]);
    await callAs(token, `${base}/${target}`, { method: "PATCH", json: { position: 99 } });
    expect((await positions(session.id)).map((m) => m.text)).toEqual(["at the start", "message 0", "message 1", "at the end", "edited"]);

    expect((await callAs(token, `${base}/${session.messages[1]!.id}`, { method: "DELETE" })).status).toBe(200);
    expect(await positions(session.id)).toEqual([
      { position: 0, text: "at the start" },
      { position: 1, text: "message 0" },
      { position: 2, text: "at the end" },
      { position: 3, text: "edited" },
    ]);
    const missing = await callAs(token, `${base}/${session.messages[1]!.id}`, { method: "DELETE" });
    expect(missing.status).toBe(404);
    expect(await json(missing)).toMatchObject({ error: { code: "MESSAGE_NOT_FOUND" } });
    expect((await callAs(token, `${base}/${session.messages[1]!.id}`, { method: "PATCH", json: { text: "x" } })).status).toBe(404);
  });

  it("keeps positions dense under concurrent inserts and deletes", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 6);
    const base = `/api/v1/sessions/${session.id}/messages`;
    const responses = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => callAs(token, base, { method: "POST", json: { sender: "user", text: `new ${i}`, position: i % 3 } })),
      ...session.messages.slice(0, 3).map((m) => callAs(token, `${base}/${m.id}`, { method: "DELETE" })),
    ]);
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 201, 201, 201, 201, 201, 201]);
    expect((await positions(session.id)).map((m) => m.position)).toEqual(Array.from({ length: 9 }, (_, i) => i));
  });

  it("holds a conversation to 200 messages", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 200);
    const response = await callAs(token, `/api/v1/sessions/${session.id}/messages`, { method: "POST", json: { sender: "user", text: "one more" } });
    expect(response.status).toBe(409);
    expect(await json(response)).toMatchObject({ error: { code: "CONVERSATION_TOO_LONG" } });
    expect(await positions(session.id)).toHaveLength(200);
  });

  it("refuses edits while OCR runs or a generation streams", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 2);
    for (const status of ["ocr_processing", "generating"] as const) {
      await setStatus(session.id, status);
      for (const [method, path, body] of [
        ["POST", `/api/v1/sessions/${session.id}/messages`, { sender: "user", text: "x" }],
        ["PATCH", `/api/v1/sessions/${session.id}/messages/${session.messages[0]!.id}`, { text: "x" }],
        ["DELETE", `/api/v1/sessions/${session.id}/messages/${session.messages[0]!.id}`, undefined],
      ] as const) {
        const response = await callAs(token, path, { method, json: body });
        expect(response.status).toBe(409);
        expect(await json(response)).toMatchObject({ error: { code: "INVALID_SESSION_STATE", details: { status } } });
      }
    }
    expect(await positions(session.id)).toHaveLength(2);
  });
});

describe("session lifecycle", () => {
  beforeEach(resetDatabase);

  it("confirms OCR, optionally with corrections, and broadcasts the new status", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 2);
    await setStatus(session.id, "ocr_review");
    const corrected = [
      { sender: "match", text: "Hey! Loved your hiking photos" },
      { sender: "user", text: "Thanks, that was Patagonia" },
      { sender: "match", text: "No way, I've always wanted to go" },
    ];
    const response = await callAs(token, `/api/v1/sessions/${session.id}/confirm-ocr`, { method: "POST", json: { messages: corrected } });
    expect(response.status).toBe(200);
    const body = await json<Session>(response);
    expect(body).toMatchObject({ data: { status: "ready" } });
    expect(body.success && body.data.messages.map((m) => [m.position, m.sender, m.text, m.source])).toEqual(corrected.map((m, i) => [i, m.sender, m.text, "ocr"]));
    expect(await statusEvents(session.id)).toEqual(["ready"]);

    const again = await callAs(token, `/api/v1/sessions/${session.id}/confirm-ocr`, { method: "POST", json: { messages: corrected.slice(0, 1) } });
    expect(again.status).toBe(409);
    expect(await json(again)).toMatchObject({ error: { code: "INVALID_SESSION_STATE", details: { status: "ready" } } });
    // The refused correction changed nothing.
    expect(await positions(session.id)).toHaveLength(3);
  });

  it("confirms OCR as is without a body", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 2);
    await setStatus(session.id, "ocr_review");
    const response = await call(`/api/v1/sessions/${session.id}/confirm-ocr`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(await positions(session.id)).toHaveLength(2);
  });

  it("retries a failed session from the step that failed, and only a failed one", async () => {
    const { token } = await signedInUser();
    const session = await textSession(token, 2);
    await setStatus(session.id, "failed", "generating");
    const back = await json<Session>(await callAs(token, `/api/v1/sessions/${session.id}/retry`, { method: "POST" }));
    expect(back).toMatchObject({ data: { status: "ready", error: null } });
    await setStatus(session.id, "failed", "ocr_processing");
    const requeued = await json<Session>(await callAs(token, `/api/v1/sessions/${session.id}/retry`, { method: "POST" }));
    expect(requeued).toMatchObject({ data: { status: "ocr_queued" } });
    const refused = await callAs(token, `/api/v1/sessions/${session.id}/retry`, { method: "POST" });
    expect(refused.status).toBe(409);
    expect(await json(refused)).toMatchObject({ error: { code: "INVALID_SESSION_STATE" } });
  });

  it("checks the AI budget before retrying OCR, leaving the session failed", async () => {
    const { token, userId } = await signedInUser();
    const session = await textSession(token, 2);
    await setStatus(session.id, "failed", "ocr_processing");
    await testDb().insert(aiCalls).values({ userId, kind: "ocr", provider: "gemini", model: "gemini-2.5-flash", status: "succeeded", costUsd: "0.75" });
    const refused = await callAs(token, `/api/v1/sessions/${session.id}/retry`, { method: "POST" });
    expect(refused.status).toBe(429);
    expect(await json(refused)).toMatchObject({ error: { code: "AI_BUDGET_EXCEEDED" } });
    const [row] = await testDb().select().from(sessions).where(eq(sessions.id, session.id));
    expect(row?.status).toBe("failed");
  });

  it("puts retries and screenshot sessions in the AI rate-limit tier, and typed sessions not", async () => {
    // The real app with an AI tier of 2 requests (an hour's window, so the burst never straddles two).
    const app = createApp();
    const bindings = { ...env, RATE_LIMIT_AI: "2", RATE_LIMIT_WINDOW_SECONDS: "3600" } as Bindings;
    const { token } = await signedInUser();
    const post = async (path: string, json?: unknown) => {
      const ctx = createExecutionContext();
      const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
      const response = await app.fetch(new Request(`http://127.0.0.1${path}`, { method: "POST", headers, body: JSON.stringify(json ?? {}) }), bindings, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    };
    const typed = () => post("/api/v1/sessions", { type: "text", messages: conversation(2) });
    const failed = await textSession(token, 2);
    await setStatus(failed.id, "failed", "generating");

    const first = await typed();
    expect(first.status).toBe(201);
    expect(first.headers.get("RateLimit-Limit")).not.toBe("2");
    const retried = await post(`/api/v1/sessions/${failed.id}/retry`);
    expect(retried.status).toBe(200);
    expect([retried.headers.get("RateLimit-Limit"), retried.headers.get("RateLimit-Remaining")]).toEqual(["2", "1"]);
    const screenshots = await post("/api/v1/sessions", { type: "screenshot", imageKeys: [await uploadImage(token)] });
    expect(screenshots.status).toBe(201);
    expect(screenshots.headers.get("RateLimit-Remaining")).toBe("0");

    // The tier is spent: a retry and a screenshot session are refused before anything happens…
    const retryAgain = await post(`/api/v1/sessions/${failed.id}/retry`);
    expect(retryAgain.status).toBe(429);
    expect(await json(retryAgain)).toMatchObject({ error: { code: "RATE_LIMITED" } });
    expect(Number(retryAgain.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    const key = await uploadImage(token);
    const more = await post("/api/v1/sessions", { type: "screenshot", imageKeys: [key] });
    expect(more.status).toBe(429);
    expect(await json(more)).toMatchObject({ error: { code: "RATE_LIMITED" } });
    const [image] = await testDb().select().from(sessionImages).where(eq(sessionImages.r2Key, key));
    expect(image?.sessionId).toBeNull();
    // …while typing a conversation in spends no AI money and goes on working.
    expect((await typed()).status).toBe(201);
    expect((await typed()).status).toBe(201);
  });

  it("allows exactly the transitions of the state machine, records where a session failed, and lets one racer win", async () => {
    const { token, userId } = await signedInUser();
    const session = await textSession(token, 1);
    const deps = { db: testDb(), broadcast: createBroadcast(env, createLogger({ level: "error" })) };
    const all = Object.keys(sessionTransitions) as SessionStatus[];
    for (const from of all) {
      for (const to of all) {
        await setStatus(session.id, from);
        const attempt = transitionSession(deps, { sessionId: session.id, userId, to, error: { code: "JOB_LOST" } });
        if (sessionTransitions[from].includes(to)) await expect(attempt).resolves.toMatchObject({ status: to });
        else await expect(attempt).rejects.toMatchObject({ code: "INVALID_SESSION_STATE" });
      }
    }
    await setStatus(session.id, "generating");
    const failed = await transitionSession(deps, { sessionId: session.id, to: "failed", error: { code: "AI_UNAVAILABLE", message: "every provider failed" } });
    expect(failed).toMatchObject({ status: "failed", failedFrom: "generating", errorCode: "AI_UNAVAILABLE" });

    await setStatus(session.id, "ready");
    const racers = await Promise.allSettled(Array.from({ length: 5 }, () => transitionSession(deps, { sessionId: session.id, to: "generating" })));
    expect(racers.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    await expect(transitionSession(deps, { sessionId: "nosuchsession", to: "ready" })).rejects.toMatchObject({ code: "SESSION_NOT_FOUND" });
  });
});
