import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { call, callAs, clerkId, forgedToken, json, mintToken, resetDatabase, testConfig } from "../../test/helpers";
import { openSocket, randomIp, seedSession, storageOf, type TestSocket, upgrade } from "../../test/ws";
import { createRedis } from "../lib/redis";
import { sessionRoom } from "../modules/sessions/room";
import { issueTicket, ROOM_GRANT_HEADER } from "./access";
import { roomStub } from "./rooms";

const socketPath = (sessionId: string) => `/api/v1/sessions/${sessionId}/ws`;
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

function publish(sessionId: string, n: number) {
  const room = roomStub(env, sessionRoom(sessionId));
  return Promise.all(Array.from({ length: n }, (_, i) => room.publish({ type: "status", data: { status: "ready", progress: i } })));
}

async function ticketFor(token: string, sessionId: string) {
  const response = await callAs(token, `/api/v1/sessions/${sessionId}/ws-ticket`, { method: "POST" });
  return { status: response.status, body: await json<{ ticket: string; expiresAt: string; url: string }>(response) };
}

async function ticketOf(token: string, sessionId: string): Promise<string> {
  const { body } = await ticketFor(token, sessionId);
  if (!body.success) throw new Error(`no ticket: ${JSON.stringify(body)}`);
  return body.data.ticket;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe("verified upgrades: a bearer header or a ticket, checked before the room is touched", () => {
  beforeEach(resetDatabase);

  it("makes a socket with a valid bearer header live at once, replaying after ?afterSeq, then live events", async () => {
    const { sessionId, token } = await seedSession();
    await publish(sessionId, 3);
    const socket = await openSocket(`${socketPath(sessionId)}?afterSeq=1`, bearer(token));
    expect(await socket.frame("authenticated")).toMatchObject({ seq: 3 });
    await publish(sessionId, 2);
    expect((await socket.events(4)).map((event) => event.seq)).toEqual([2, 3, 4, 5]);
    // Frames work at once: no authenticate was needed.
    socket.send({ type: "ping" });
    await socket.frame("pong");
  });

  it("refuses a bad token with 401 and another user's room with 404, and neither room gets any storage", async () => {
    const mine = await seedSession();
    const theirs = await seedSession();
    const expired = await mintToken(mine.sub, { nowSeconds: nowSeconds() - 600, ttlSeconds: 60 });
    const cases: Array<[string, Record<string, string>, number, string]> = [
      [theirs.sessionId, bearer(await forgedToken(mine.sub)), 401, "UNAUTHORIZED"],
      [theirs.sessionId, bearer(expired), 401, "TOKEN_EXPIRED"],
      [theirs.sessionId, { Authorization: "Basic abc" }, 401, "UNAUTHORIZED"],
      [theirs.sessionId, bearer(mine.token), 404, "NOT_FOUND"],
    ];
    for (const [sessionId, headers, status, code] of cases) {
      const response = await upgrade(socketPath(sessionId), headers);
      expect({ status: response.status, body: await json(response) }, code).toMatchObject({ status, body: { error: { code } } });
    }
    expect(await storageOf(sessionRoom(theirs.sessionId))).toEqual({ tables: 0, alarm: null, sockets: 0 });
  });

  it("serves a ticket once: the second use, another room's ticket, a forged and an expired one are refused before the room", async () => {
    const { sessionId, token, userId, sub } = await seedSession();
    const other = await seedSession({ sub });

    const issued = await ticketFor(token, sessionId);
    expect(issued).toMatchObject({ status: 200, body: { success: true } });
    if (!issued.body.success) return;
    const { ticket, url, expiresAt } = issued.body.data;
    expect(ticket).toMatch(/^[a-z0-9]+\.[A-Za-z0-9_-]{43}$/);
    expect(new URL(url).searchParams.get("ticket")).toBe(ticket);
    expect(new URL(url).pathname).toBe(socketPath(sessionId));
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);

    const socket = await openSocket(`${socketPath(sessionId)}?ticket=${encodeURIComponent(ticket)}`);
    await socket.frame("authenticated");

    const redis = createRedis(testConfig());
    const shortLived = await issueTicket(redis, sessionRoom(sessionId), { userId, clerkUserId: sub, tokenExpiresAt: Date.now() + 60_000 }, { ttlMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 200));

    const refused: Array<[string, string]> = [
      ["used twice", `${socketPath(sessionId)}?ticket=${ticket}`],
      ["for another room", `${socketPath(sessionId)}?ticket=${await ticketOf(token, other.sessionId)}`],
      ["forged", `${socketPath(sessionId)}?ticket=${userId}.${"A".repeat(43)}`],
      ["malformed", `${socketPath(sessionId)}?ticket=nonsense`],
      ["expired", `${socketPath(sessionId)}?ticket=${shortLived.ticket}`],
    ];
    for (const [what, path] of refused) {
      const response = await upgrade(path);
      expect({ status: response.status, body: await json(response) }, what).toMatchObject({ status: 401, body: { error: { code: "WS_TICKET_INVALID" } } });
    }
    expect(await storageOf(sessionRoom(other.sessionId))).toEqual({ tables: 0, alarm: null, sockets: 0 });
  });

  it("gives no ticket for another user's session, nor to a caller without a token", async () => {
    const mine = await seedSession();
    const theirs = await seedSession();
    expect(await ticketFor(mine.token, theirs.sessionId)).toMatchObject({ status: 404, body: { error: { code: "SESSION_NOT_FOUND" } } });
    const anonymous = await call(`/api/v1/sessions/${mine.sessionId}/ws-ticket`, { method: "POST" });
    expect({ status: anonymous.status, body: await json(anonymous) }).toMatchObject({ status: 401, body: { error: { code: "UNAUTHORIZED" } } });
  });

  it("ignores a grant header sent by a client: the socket still has to authenticate, and the room stores nothing", async () => {
    const { sessionId, userId, sub } = await seedSession();
    const grant = { userId, clerkUserId: sub, expiresAt: Date.now() + 60_000, socketId: "fake" };
    const socket = await openSocket(socketPath(sessionId), { [ROOM_GRANT_HEADER]: JSON.stringify(grant) });
    socket.send({ type: "resume", afterSeq: 0 });
    expect(await socket.closed()).toMatchObject({ code: 4401, reason: "AUTH_REQUIRED" });
    expect(socket.frames.find((frame) => frame.type === "authenticated")).toBeUndefined();
  });

  it("creates no room storage for an unauthenticated upgrade (no table, no alarm) and still closes it at its deadline", async () => {
    const room = sessionRoom("nosuchsession0000000000001");
    const socket = await openSocket(`/api/v1/sessions/${room.id}/ws`);
    expect(await storageOf(room)).toMatchObject({ tables: 0, alarm: null, sockets: 1 });
    expect(await socket.closed(5_000)).toMatchObject({ code: 4401, reason: "AUTH_TIMEOUT" });
    expect(await storageOf(room)).toMatchObject({ tables: 0, alarm: null });
  });
});

describe("limits on sockets", () => {
  beforeEach(resetDatabase);

  it("answers 429 RATE_LIMITED with Retry-After once one IP used up its upgrades, before anything else", async () => {
    const ip = randomIp();
    const limit = testConfig().RATE_LIMIT_WS_UPGRADE;
    // Plain GETs count too: the limit comes before the upgrade check.
    for (let i = 0; i < limit; i++) expect((await upgrade("/api/v1/sessions/nosuchsession/ws", { "CF-Connecting-IP": ip, Upgrade: "no" })).status).toBe(426);
    const refused = await upgrade("/api/v1/sessions/nosuchsession/ws", { "CF-Connecting-IP": ip });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(await json(refused)).toMatchObject({ error: { code: "RATE_LIMITED" } });
    // So is the ticket route, before the token is even read.
    const post = await callAs("not-a-token", "/api/v1/sessions/nosuchsession/ws-ticket", { method: "POST", headers: { "CF-Connecting-IP": ip } });
    expect(post.status).toBe(429);
    // Another address is not affected.
    expect((await upgrade("/api/v1/sessions/nosuchsession/ws", { Upgrade: "no" })).status).toBe(426);
  });

  it("refuses a user's socket past WS_MAX_SOCKETS_PER_USER across rooms: 429 for a header upgrade, close 4429 for first-frame auth", async () => {
    const cap = testConfig().WS_MAX_SOCKETS_PER_USER;
    const first = await seedSession();
    const second = await seedSession({ sub: first.sub });
    const open: TestSocket[] = [];
    for (let i = 0; i < cap; i++) {
      const socket = await openSocket(socketPath(i % 2 === 0 ? first.sessionId : second.sessionId), bearer(first.token));
      await socket.frame("authenticated");
      open.push(socket);
    }
    const refused = await upgrade(socketPath(second.sessionId), bearer(first.token));
    expect({ status: refused.status, body: await json(refused) }).toMatchObject({ status: 429, body: { error: { code: "TOO_MANY_SOCKETS" } } });
    const viaTicket = await upgrade(`${socketPath(first.sessionId)}?ticket=${await ticketOf(first.token, first.sessionId)}`);
    expect(viaTicket.status).toBe(429);
    const viaFrame = await openSocket(socketPath(first.sessionId));
    viaFrame.send({ type: "authenticate", token: first.token });
    expect(await viaFrame.closed()).toMatchObject({ code: 4429, reason: "TOO_MANY_SOCKETS" });

    // Another user is not counted against this one.
    const stranger = await seedSession();
    await (await openSocket(socketPath(stranger.sessionId), bearer(stranger.token))).frame("authenticated");

    // A closed socket frees its place.
    open[0]!.close();
    await open[0]!.closed();
    await expect
      .poll(async () => (await upgrade(socketPath(first.sessionId), bearer(first.token))).status, { timeout: 3_000 })
      .toBe(101);
  });
});

describe("token expiry on a live socket", () => {
  beforeEach(resetDatabase);

  it("closes a live socket 4401 TOKEN_EXPIRED once its token expires", async () => {
    const { sessionId, sub } = await seedSession();
    const token = await mintToken(sub, { ttlSeconds: 2 });
    const exp = (nowSeconds() + 2) * 1000;
    const socket = await openSocket(socketPath(sessionId), bearer(token));
    await socket.frame("authenticated");
    const closed = await socket.closed(6_000);
    expect(closed).toMatchObject({ code: 4401, reason: "TOKEN_EXPIRED" });
    expect(Date.now()).toBeGreaterThanOrEqual(exp - 1_000);
  });

  it("keeps a socket open past its first expiry when the same user re-authenticates first, then closes it at the new one", async () => {
    const { sessionId, sub } = await seedSession();
    const socket = await openSocket(socketPath(sessionId));
    socket.send({ type: "authenticate", token: await mintToken(sub, { ttlSeconds: 2 }) });
    await socket.frame("authenticated");
    const firstExp = (nowSeconds() + 2) * 1000;
    socket.send({ type: "authenticate", token: await mintToken(sub, { ttlSeconds: 5 }) });
    await expect.poll(() => socket.frames.filter((frame) => frame.type === "authenticated").length).toBe(2);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstExp - Date.now()) + 1_500));
    await publish(sessionId, 1);
    expect((await socket.events(1)).map((event) => event.seq)).toEqual([1]);
    socket.send({ type: "ping" });
    await socket.frame("pong");
    expect(await socket.closed(6_000)).toMatchObject({ code: 4401, reason: "TOKEN_EXPIRED" });
  });

  it("closes a live socket 4401 when another user's token is sent on it", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await openSocket(socketPath(sessionId), bearer(token));
    await socket.frame("authenticated");
    socket.send({ type: "authenticate", token: await mintToken(clerkId()) });
    expect(await socket.closed()).toMatchObject({ code: 4401, reason: "TOKEN_INVALID" });
  });
});

describe("deletions close sockets at once", () => {
  beforeEach(resetDatabase);

  it("closes a deleted session's sockets with 4404 ROOM_DELETED and wipes its events", async () => {
    const { sessionId, token } = await seedSession();
    const [a, b] = [await openSocket(socketPath(sessionId), bearer(token)), await openSocket(socketPath(sessionId))];
    b.send({ type: "authenticate", token });
    await Promise.all([a.frame("authenticated"), b.frame("authenticated")]);
    await publish(sessionId, 2);
    await a.events(2);

    expect((await callAs(token, `/api/v1/sessions/${sessionId}`, { method: "DELETE" })).status).toBe(200);
    for (const socket of [a, b]) expect(await socket.closed()).toMatchObject({ code: 4404, reason: "ROOM_DELETED" });
    expect(await storageOf(sessionRoom(sessionId))).toMatchObject({ tables: 0, alarm: null });
  });

  it("closes every socket of a deleted account, in every room, with 4401 ACCOUNT_DELETED, and keeps the rooms' events", async () => {
    const first = await seedSession();
    const second = await seedSession({ sub: first.sub });
    const bystander = await seedSession();
    const sockets = [
      await openSocket(socketPath(first.sessionId), bearer(first.token)),
      await openSocket(socketPath(second.sessionId), bearer(first.token)),
    ];
    const other = await openSocket(socketPath(bystander.sessionId), bearer(bystander.token));
    await Promise.all([...sockets, other].map((socket) => socket.frame("authenticated")));
    await publish(first.sessionId, 2);

    expect((await callAs(first.token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
    for (const socket of sockets) expect(await socket.closed()).toMatchObject({ code: 4401, reason: "ACCOUNT_DELETED" });
    expect(await roomStub(env, sessionRoom(first.sessionId)).eventsAfter(0)).toHaveLength(2);
    other.send({ type: "ping" });
    await other.frame("pong");
  });
});
