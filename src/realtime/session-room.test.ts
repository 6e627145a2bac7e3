import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { call, callAs, clerkId, forgedToken, json, mintToken, resetDatabase, testConfig } from "../../test/helpers";
import { createRedis } from "../lib/redis";
import { authenticatedSocket, isRoomEvent, openSocket, seedSession, type TestSocket } from "../../test/ws";
import { parseRoomFrames } from "./protocol";
import { sessionRoom } from "../modules/sessions/room";
import { roomStub } from "./rooms";

function authenticated(sessionId: string, token: string, extra: Record<string, unknown> = {}): Promise<TestSocket> {
  return authenticatedSocket(`/api/v1/sessions/${sessionId}/ws`, token, extra);
}

function publish(sessionId: string, n: number, from = 0) {
  const room = roomStub(env, sessionRoom(sessionId));
  return Promise.all(Array.from({ length: n }, (_, i) => room.publish({ type: "status", data: { status: "ready", progress: from + i } })));
}

const seqs = (frames: Array<{ seq?: number }>) => frames.map((frame) => frame.seq);

/** Occupies Redis (single-threaded) with a script that spins for `ms`: every other command waits. */
function keepRedisBusy(ms: number) {
  const spin = "local t = redis.call('TIME') local until_us = t[1] * 1000000 + t[2] + tonumber(ARGV[1]) * 1000 repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= until_us return 1";
  return createRedis(testConfig(), { retries: 0 }).eval(spin, [], [String(ms)]);
}

describe("SessionRoom WebSockets", () => {
  beforeEach(resetDatabase);

  it("closes a socket that never authenticates with 4401 once the deadline passes", async () => {
    const { sessionId } = await seedSession();
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    const started = Date.now();
    expect(await socket.closed(5_000)).toMatchObject({ code: 4401, reason: "AUTH_TIMEOUT" });
    // WS_AUTH_TIMEOUT_MS is 1000 in tests: closed by the alarm, not before the deadline.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("gives a token that arrived before the deadline its check in full: a slow check ends live, not AUTH_TIMEOUT", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    // WS_AUTH_TIMEOUT_MS is 1000 in tests: the token comes just in time, and the room's check
    // (its socket-registry call waits for a busy Redis) outlasts the deadline.
    await new Promise((resolve) => setTimeout(resolve, 800));
    socket.send({ type: "authenticate", token });
    await keepRedisBusy(500);
    expect(await socket.frame("authenticated", 0, 3_000)).toMatchObject({ type: "authenticated" });
    socket.send({ type: "ping" });
    await socket.frame("pong");
    // The deadline was for the token; a socket that never sends one still goes at it.
    const silent = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    expect(await silent.closed(5_000)).toMatchObject({ code: 4401, reason: "AUTH_TIMEOUT" });
  });

  it("books no alarm for a socket it has closed, so a client that never answers the close cannot keep the alarm running", async () => {
    const { sessionId } = await seedSession();
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    // The deadline's alarm, run by hand the moment the deadline has passed: the socket it
    // closes is still listed by the runtime until the client answers the close.
    const booked = await runInDurableObject(roomStub(env, sessionRoom(sessionId)), async (instance, state) => {
      await state.storage.deleteAlarm();
      for (const ws of state.getWebSockets()) ws.serializeAttachment({ ...(ws.deserializeAttachment() as object), authDeadline: Date.now() - 1 });
      await instance.alarm();
      return state.storage.getAlarm();
    });
    expect(await socket.closed()).toMatchObject({ code: 4401 });
    expect(booked).toBeNull();
  });

  it("closes with 4401 for an invalid or expired token, and for a first frame that is not authenticate", async () => {
    const { sessionId, sub } = await seedSession();
    const expired = await mintToken(sub, { nowSeconds: Math.floor(Date.now() / 1000) - 600, ttlSeconds: 60 });
    const cases = [
      [{ type: "authenticate", token: await forgedToken(sub) }, "TOKEN_INVALID"],
      [{ type: "authenticate", token: expired }, "TOKEN_INVALID"],
      [{ type: "resume", afterSeq: 0 }, "AUTH_REQUIRED"],
    ] as const;
    for (const [frame, reason] of cases) {
      const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
      socket.send(frame);
      // The reason is the catalog code, for a client that wants more than the close code.
      expect(await socket.closed()).toMatchObject({ code: 4401, reason });
    }
  });

  it("closes with 4404 for another user's, a missing, and a deleted session", async () => {
    const mine = await seedSession();
    const theirs = await seedSession();
    const deleted = await seedSession({ deleted: true });
    const cases = [
      { sessionId: theirs.sessionId, token: mine.token },
      { sessionId: "doesnotexist0000000000000", token: mine.token },
      { sessionId: deleted.sessionId, token: deleted.token },
    ];
    for (const { sessionId, token } of cases) {
      const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
      socket.send({ type: "authenticate", token });
      expect(await socket.closed()).toMatchObject({ code: 4404, reason: "ROOM_NOT_FOUND" });
    }
  });

  it("refuses a deleted account's still-valid token, after the HTTP API refused it too (no request restores the account)", async () => {
    const token = await mintToken(clerkId(), { nowSeconds: Math.floor(Date.now() / 1000) - 120 });
    const created = await json<{ id: string }>(
      await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages: [{ sender: "match", text: "hi" }] } }),
    );
    const sessionId = created.success ? created.data.id : "";
    (await authenticated(sessionId, token)).close();
    expect((await callAs(token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
    expect((await callAs(token, "/api/v1/users/me")).status).toBe(401);
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    socket.send({ type: "authenticate", token });
    expect(await socket.closed()).toMatchObject({ code: 4404 });
  });

  it("answers JSON ping with pong, and reports the room's seq on authentication", async () => {
    const { sessionId, token } = await seedSession();
    await publish(sessionId, 3);
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    socket.send({ type: "ping" });
    const pong = await socket.frame("pong");
    expect(pong.ts).toBeTypeOf("number");
    socket.send({ type: "authenticate", token });
    const auth = await socket.frame("authenticated");
    expect(auth).toMatchObject({ seq: 3 });
    socket.send({ type: "ping" });
    await socket.frame("pong", socket.frames.indexOf(auth));
  });

  it("answers 426 to a plain GET, and offers no way to publish over HTTP", async () => {
    const { sessionId, token } = await seedSession();
    const plain = await call(`/api/v1/sessions/${sessionId}/ws`);
    expect(plain.status).toBe(426);
    expect(await json(plain)).toMatchObject({ error: { code: "UPGRADE_REQUIRED" } });
    const post = await callAs(token, `/api/v1/sessions/${sessionId}/ws`, { method: "POST", json: { type: "status" } });
    expect(post.status).toBe(404);
    expect(await roomStub(env, sessionRoom(sessionId)).eventsAfter(0)).toEqual([]);
  });

  it("delivers every event to every socket, numbered and in the same order", async () => {
    const { sessionId, token } = await seedSession();
    const a = await authenticated(sessionId, token);
    const b = await authenticated(sessionId, token);
    await publish(sessionId, 50);
    const [fromA, fromB] = await Promise.all([a.events(50), b.events(50)]);
    expect(seqs(fromA)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(fromB).toEqual(fromA);
    for (const event of fromA) expect(event).toMatchObject({ type: "status", status: "ready", ts: expect.any(Number) });
  });

  it("replays what a reconnecting socket missed on resume, then continues live: no gap, no duplicate", async () => {
    const { sessionId, token } = await seedSession();
    const first = await authenticated(sessionId, token);
    await publish(sessionId, 3);
    const seen = await first.events(3);
    first.close();
    await publish(sessionId, 4, 3);

    const again = await authenticated(sessionId, token);
    again.send({ type: "resume", afterSeq: seen.at(-1)!.seq });
    await again.events(4);
    await publish(sessionId, 2, 7);
    const after = await again.events(6);
    expect(seqs([...seen, ...after])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("resumes atomically when authenticate carries afterSeq, even while events keep coming", async () => {
    const { sessionId, token } = await seedSession();
    await publish(sessionId, 5);
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    const racing = publish(sessionId, 20, 5);
    socket.send({ type: "authenticate", token, afterSeq: 2 });
    await racing;
    const events = await socket.events(23);
    expect(seqs(events)).toEqual(Array.from({ length: 23 }, (_, i) => i + 3));
  });

  it("holds a resume or cancel sent right behind authenticate while the token is checked: the replay comes first, in order, and the socket stays open", async () => {
    const { sessionId, token } = await seedSession();
    await publish(sessionId, 5);
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    // As a client that queues frames while its socket opens sends them: all at once. Redis is
    // kept busy meanwhile, so the room's check (the socket registry) is still running when the
    // next frames arrive.
    socket.send({ type: "authenticate", token });
    const busy = keepRedisBusy(300);
    socket.send({ type: "resume", afterSeq: 2 });
    socket.send({ type: "cancel", generationId: "gen1" });
    await busy;
    await socket.frame("authenticated");
    await publish(sessionId, 1, 5);
    expect(seqs(await socket.events(4))).toEqual([3, 4, 5, 6]);
    expect(socket.frames.map((frame) => frame.type)).toEqual(["authenticated", "status", "status", "status", "status"]);
    expect(await roomStub(env, sessionRoom(sessionId)).isCancelRequested("gen1")).toBe(true);
    socket.send({ type: "ping" });
    await socket.frame("pong");
  });

  it("keeps every socket working and resumable when the room is evicted mid-way", async () => {
    const { sessionId, token } = await seedSession();
    const stay = await authenticated(sessionId, token);
    const leave = await authenticated(sessionId, token);
    await publish(sessionId, 3);
    await leave.events(3);
    leave.close();
    await stay.events(3);

    await evictDurableObject(roomStub(env, sessionRoom(sessionId)));
    await publish(sessionId, 3, 3);
    expect(seqs(await stay.events(6))).toEqual([1, 2, 3, 4, 5, 6]);
    stay.send({ type: "ping" });
    await stay.frame("pong");

    const back = await authenticated(sessionId, token, { afterSeq: 3 });
    expect(seqs(await back.events(3))).toEqual([4, 5, 6]);
  });

  it("answers malformed, unknown, binary and oversized frames with an error event and keeps the socket open", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await authenticated(sessionId, token);
    const bad = ["not json", JSON.stringify({ type: "nope" }), JSON.stringify({ type: "resume", afterSeq: -1 }), JSON.stringify([1])];
    for (const frame of bad) socket.send(frame);
    socket.ws.send(new Uint8Array([1, 2, 3]));
    socket.send(JSON.stringify({ type: "ping", pad: "x".repeat(20_000) }));
    socket.send({ type: "ping" });
    await socket.frame("pong");
    const errors = socket.frames.filter((f) => f.type === "error");
    expect(errors.map((e) => e.code)).toEqual([...bad.map(() => "MALFORMED_FRAME"), "MALFORMED_FRAME", "FRAME_TOO_LARGE"]);
    await publish(sessionId, 1);
    expect(seqs(await socket.events(1))).toEqual([1]);
  });

  it("sends an error then closes with 4429 a socket that floods frames", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await authenticated(sessionId, token);
    for (let i = 0; i < 30; i++) socket.send({ type: "ping" });
    expect(await socket.closed()).toMatchObject({ code: 4429 });
    expect(socket.frames.find((f) => f.type === "error")).toMatchObject({ code: "RATE_LIMITED" });
    // The limit is per socket: a new one on the same room works.
    const other = await authenticated(sessionId, token);
    other.send({ type: "ping" });
    await other.frame("pong");
  });

  it("passes a cancel frame to the generation's runner", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await authenticated(sessionId, token);
    const room = roomStub(env, sessionRoom(sessionId));
    expect(await room.isCancelRequested("gen1")).toBe(false);
    socket.send({ type: "cancel", generationId: "gen1" });
    socket.send({ type: "ping" });
    await socket.frame("pong");
    expect(await room.isCancelRequested("gen1")).toBe(true);
  });

  it("tells a publisher that names its generation whether a cancel was asked for, and no one else", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await authenticated(sessionId, token);
    const room = roomStub(env, sessionRoom(sessionId));
    const event = (progress: number) => ({ type: "status", data: { status: "ready", progress } }) as const;
    expect(await room.publish(event(1), { cancelOf: "gen1" })).toEqual({ seq: 1, duplicate: false, cancelRequested: false });
    socket.send({ type: "cancel", generationId: "gen1" });
    socket.send({ type: "ping" });
    await socket.frame("pong");
    expect(await room.publish(event(2), { cancelOf: "gen1" })).toEqual({ seq: 2, duplicate: false, cancelRequested: true });
    expect(await room.publish(event(3), { cancelOf: "gen2" })).toEqual({ seq: 3, duplicate: false, cancelRequested: false });
    expect(await room.publish(event(4))).toEqual({ seq: 4, duplicate: false });
    // A duplicate still answers the question: a redelivered run hears of the cancel too.
    expect(await room.publish(event(5), { key: "k" })).toEqual({ seq: 5, duplicate: false });
    expect(await room.publish(event(5), { key: "k", cancelOf: "gen1" })).toEqual({ seq: 5, duplicate: true, cancelRequested: true });
  });

  it("forgets a room: closes its sockets with ROOM_DELETED and deletes its events, cancellations and alarm", async () => {
    const { sessionId, token } = await seedSession();
    const [first, second] = [await authenticated(sessionId, token), await authenticated(sessionId, token)];
    await publish(sessionId, 3);
    await first.send({ type: "cancel", generationId: "g1" });
    const room = roomStub(env, sessionRoom(sessionId));
    await expect.poll(() => room.isCancelRequested("g1")).toBe(true);

    expect(await room.forget("ROOM_DELETED")).toEqual({ closedSockets: 2 });
    for (const socket of [first, second]) expect(await socket.closed()).toMatchObject({ code: 4404, reason: "ROOM_DELETED" });
    const left = await runInDurableObject(room, async (_instance, state) => ({
      tables: state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().length,
      alarm: await state.storage.getAlarm(),
    }));
    expect(left).toEqual({ tables: 0, alarm: null });
    expect(await room.eventsAfter(0)).toEqual([]);
    expect(await room.isCancelRequested("g1")).toBe(false);
    // A room forgotten by mistake (or a late publish) works again, from an empty history.
    expect(await room.publish({ type: "status", data: { status: "ready" } })).toEqual({ seq: 1, duplicate: false });
  });

  it("publishes an event with a key once, however often it is published", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await authenticated(sessionId, token);
    const room = roomStub(env, sessionRoom(sessionId));
    const first = await room.publish({ type: "phase", data: { generationId: "gen1", phase: 2, confidence: 0.8 } }, { key: "phase:1" });
    const again = await room.publish({ type: "phase", data: { generationId: "gen1", phase: 2, confidence: 0.8 } }, { key: "phase:1" });
    expect(first).toEqual({ seq: 1, duplicate: false });
    expect(again).toEqual({ seq: 1, duplicate: true });
    await room.publish({ type: "status", data: { status: "ready" } });
    expect(seqs(await socket.events(2))).toEqual([1, 2]);
    expect(socket.frames.filter(isRoomEvent)).toHaveLength(2);
  });

  it("closes an unauthenticated socket by its next frame once its deadline passed, whatever became of its timer (eviction)", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
    const opened = Date.now();
    // The deadline as an evicted room finds it: passed, with no timer left to act on it.
    await runInDurableObject(roomStub(env, sessionRoom(sessionId)), (_instance, state) => {
      for (const ws of state.getWebSockets()) ws.serializeAttachment({ ...(ws.deserializeAttachment() as object), authDeadline: Date.now() - 1 });
    });
    socket.send({ type: "authenticate", token });
    expect(await socket.closed()).toMatchObject({ code: 4401, reason: "AUTH_TIMEOUT" });
    // Closed by the frame, before the timer (WS_AUTH_TIMEOUT_MS is 1000 in tests) was due.
    expect(Date.now() - opened).toBeLessThan(900);
    expect(socket.frames.find((frame) => frame.type === "authenticated")).toBeUndefined();
  });

  it("deletes an idle room's storage once its newest event is older than ROOM_RETENTION_HOURS, and books no further alarm", async () => {
    const { sessionId, token } = await seedSession();
    const room = roomStub(env, sessionRoom(sessionId));
    const socket = await authenticated(sessionId, token);
    await publish(sessionId, 3);
    await socket.events(3);
    socket.close();
    await socket.closed();
    await runInDurableObject(room, (_instance, state) => {
      state.storage.sql.exec("UPDATE events SET ts = ?", Date.now() - 25 * 60 * 60 * 1000);
    });
    expect(await runDurableObjectAlarm(room)).toBe(true);
    const left = await runInDurableObject(room, async (_instance, state) => ({
      tables: state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().length,
      alarm: await state.storage.getAlarm(),
    }));
    expect(left).toEqual({ tables: 0, alarm: null });
    expect(await room.eventsAfter(0)).toEqual([]);
  });

  it("keeps an old room's events while a socket is open on it, and its alarm", async () => {
    const { sessionId, token } = await seedSession();
    const room = roomStub(env, sessionRoom(sessionId));
    const socket = await authenticated(sessionId, token);
    await publish(sessionId, 3);
    await runInDurableObject(room, (_instance, state) => {
      state.storage.sql.exec("UPDATE events SET ts = ?", Date.now() - 25 * 60 * 60 * 1000);
    });
    expect(await runDurableObjectAlarm(room)).toBe(true);
    expect(parseRoomFrames(await room.eventsAfter(0)).map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(await runInDurableObject(room, (_instance, state) => state.storage.getAlarm())).not.toBeNull();
    socket.send({ type: "ping" });
    await socket.frame("pong");
  });

  it("trims events beyond the last 1,000 that are older than 24 h, and says so on a resume that reaches past them", async () => {
    const { sessionId, token } = await seedSession();
    const room = roomStub(env, sessionRoom(sessionId));
    // The first publish creates the room's tables; it and 1,009 more are then a day old.
    await publish(sessionId, 1);
    await runInDurableObject(room, (_instance, state) => {
      const old = Date.now() - 25 * 60 * 60 * 1000;
      state.storage.sql.exec("UPDATE events SET ts = ?", old);
      for (let i = 1; i < 1_010; i++) state.storage.sql.exec("INSERT INTO events (ts, frame) VALUES (?, ?)", old, JSON.stringify({ type: "status", status: "ready", seq: i + 1, ts: old }));
    });
    // Written behind the object's back: a fresh instance reads the seq they reached.
    await evictDurableObject(room);
    await publish(sessionId, 1);
    expect(await runDurableObjectAlarm(room)).toBe(true);
    const kept = parseRoomFrames(await room.eventsAfter(0, 2_000));
    expect(kept).toHaveLength(1_000);
    expect(kept[0]).toMatchObject({ seq: 12 });
    const socket = await authenticated(sessionId, token, { afterSeq: 0 });
    expect(await socket.frame("error")).toMatchObject({ code: "REPLAY_INCOMPLETE" });
    expect(seqs(await socket.events(1_000))).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 12));
  });
});
