import { env, runInDurableObject } from "cloudflare:test";
import { eq, inArray, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, clearBucket, json, mintToken, resetDatabase, signedInUser, testConfig, testDb, uploadImage } from "../../../test/helpers";
import { deliverJob, eventually, resetQStash, useJobPump } from "../../../test/jobs";
import { loadShippedTips } from "../../../test/tips";
import { resetUpstream } from "../../../test/upstream";
import { openSocket } from "../../../test/ws";
import {
  aiCalls,
  magicOpeners,
  messages,
  openerGenerations,
  pushTokens,
  sessionImages,
  sessions,
  suggestionGenerations,
  suggestions,
  tipDeliveries,
  users,
} from "../../db/schema";
import { features, roomKindsOf } from "../../features";
import { createRedis } from "../../lib/redis";
import type { RoomAddress } from "../../realtime/protocol";
import { forgetRoom, roomStub } from "../../realtime/rooms";
import { purgeAccount, type PurgeDeps } from "./purge";

const DAY_MS = 86_400_000;
const redis = () => createRedis(testConfig(), { retries: 0 });

async function redisKeysOf(userId: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis().scan(cursor, { match: `*${userId}*`, count: 1_000 });
    found.push(...keys);
    cursor = String(next);
  } while (cursor !== "0");
  return found;
}

async function roomTables(room: RoomAddress): Promise<number> {
  return runInDurableObject(roomStub(env, room), (_instance, state) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().length);
}

/** A user with something in every store: rows in each of their tables, R2 objects, rooms and Redis keys. */
async function busyUser() {
  const user = await signedInUser();
  const { token } = user;
  await callAs(token, "/api/v1/users/me/push-tokens", { method: "POST", json: { token: `ExponentPushToken[${crypto.randomUUID()}]`, platform: "ios" } });
  expect((await callAs(token, "/api/v1/tips/today")).status).toBe(200);

  // A screenshot session read by OCR, confirmed and answered: images, messages, a generation, suggestions.
  const keys = [await uploadImage(token), await uploadImage(token)];
  const created = await json<{ id: string }>(await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: keys } }));
  if (!created.success) throw new Error(`no session: ${JSON.stringify(created)}`);
  const sessionId = created.data.id;
  await eventually(async () => (await testDb().select().from(sessions).where(eq(sessions.id, sessionId)))[0]?.status === "ocr_review", "the OCR", 20_000);
  expect((await callAs(token, `/api/v1/sessions/${sessionId}/confirm-ocr`, { method: "POST", json: {} })).status).toBe(200);
  const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
  socket.send({ type: "authenticate", token });
  await socket.frame("authenticated");
  expect((await callAs(token, `/api/v1/sessions/${sessionId}/generate-suggestions`, { method: "POST", json: {} })).status).toBe(202);
  await socket.frame("suggestion.completed", 0, 20_000);

  // A deleted text session (its room holds events), and a finished opener generation.
  const text = await json<{ id: string }>(
    await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages: [{ sender: "match", text: "Hi there" }] } }),
  );
  if (!text.success) throw new Error("no text session");
  await callAs(token, `/api/v1/sessions/${text.data.id}/messages`, { method: "POST", json: { sender: "user", text: "Hello!" } });
  await callAs(token, `/api/v1/sessions/${text.data.id}`, { method: "DELETE" });
  const opener = await json<{ generationId: string }>(
    await callAs(token, "/api/v1/magic-openers/generate", { method: "POST", json: { profile: { name: "Alex", bio: "Climber", interests: ["dim sum"] } } }),
  );
  if (!opener.success) throw new Error("no opener generation");
  await eventually(async () => (await testDb().select().from(magicOpeners).where(eq(magicOpeners.userId, user.userId))).length > 0, "the openers", 20_000);

  const rooms: RoomAddress[] = [
    { kind: "session", id: sessionId },
    { kind: "session", id: text.data.id },
    { kind: "opener", id: opener.data.generationId },
  ];
  return { ...user, sessionIds: [sessionId, text.data.id], rooms };
}

/** What each store still holds of the account: every count must reach 0. */
async function leftOf(account: { userId: string; sessionIds: string[]; rooms: RoomAddress[] }) {
  const db = testDb();
  const count = async (query: Promise<unknown[]>) => (await query).length;
  const { userId, sessionIds } = account;
  const generationIds = db.select({ id: suggestionGenerations.id }).from(suggestionGenerations).where(inArray(suggestionGenerations.sessionId, sessionIds));
  return {
    users: await count(db.select().from(users).where(eq(users.id, userId))),
    pushTokens: await count(db.select().from(pushTokens).where(eq(pushTokens.userId, userId))),
    tipDeliveries: await count(db.select().from(tipDeliveries).where(eq(tipDeliveries.userId, userId))),
    sessions: await count(db.select().from(sessions).where(eq(sessions.userId, userId))),
    sessionImages: await count(db.select().from(sessionImages).where(eq(sessionImages.userId, userId))),
    messages: await count(db.select().from(messages).where(inArray(messages.sessionId, sessionIds))),
    suggestionGenerations: await count(db.select().from(suggestionGenerations).where(inArray(suggestionGenerations.sessionId, sessionIds))),
    suggestions: await count(db.select().from(suggestions).where(inArray(suggestions.generationId, generationIds))),
    openerGenerations: await count(db.select().from(openerGenerations).where(eq(openerGenerations.userId, userId))),
    magicOpeners: await count(db.select().from(magicOpeners).where(eq(magicOpeners.userId, userId))),
    aiCalls: await count(db.select().from(aiCalls).where(eq(aiCalls.userId, userId))),
    r2Objects: (await env.IMAGES.list({ prefix: `u/${userId}/` })).objects.length,
    roomTables: (await Promise.all(account.rooms.map(roomTables))).reduce((sum, n) => sum + n, 0),
    redisKeys: (await redisKeysOf(userId)).length,
  };
}

const nothing = {
  users: 0,
  pushTokens: 0,
  tipDeliveries: 0,
  sessions: 0,
  sessionImages: 0,
  messages: 0,
  suggestionGenerations: 0,
  suggestions: 0,
  openerGenerations: 0,
  magicOpeners: 0,
  aiCalls: 0,
  r2Objects: 0,
  roomTables: 0,
  redisKeys: 0,
};

function purgeDeps(overrides: Partial<PurgeDeps> = {}): PurgeDeps {
  return {
    db: testDb(),
    bucket: env.IMAGES,
    redis: redis(),
    rooms: roomKindsOf(features),
    forget: (room) => forgetRoom(env, room, "ACCOUNT_DELETED"),
    ...overrides,
  };
}

async function deleteAccount(token: string) {
  expect((await callAs(token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
}

describe("the account purge", () => {
  useJobPump();
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
    await resetUpstream();
    await resetQStash();
    await loadShippedTips();
  });

  it("leaves a deleted account nothing in any store once its grace period is over, and touches no other account", async () => {
    const account = await busyUser();
    const bystander = await busyUser();
    const before = await leftOf(account);
    // Every store really held something of the account, or the zeros below would prove nothing.
    for (const [store, n] of Object.entries(before)) expect({ store, held: n > 0 }).toEqual({ store, held: true });
    const socket = await openSocket(`/api/v1/sessions/${account.sessionIds[0]}/ws`);
    socket.send({ type: "authenticate", token: account.token });
    await socket.frame("authenticated");

    await deleteAccount(account.token);
    // Within the grace period nothing goes: the account can still be restored by signing in.
    expect(await json(await deliverJob("purge-users", { at: new Date(Date.now() + 29 * DAY_MS).toISOString() }))).toMatchObject({ data: { accounts: 0 } });
    expect((await leftOf(account)).sessions).toBe(2);

    const ran = await json(await deliverJob("purge-users", { at: new Date(Date.now() + 31 * DAY_MS).toISOString() }));
    expect(ran).toMatchObject({ data: { accounts: 1 } });
    await eventually(async () => (await testDb().select().from(users).where(eq(users.id, account.userId))).length === 0, "the purge", 20_000);
    expect(await leftOf(account)).toEqual(nothing);
    // A socket still open on one of its rooms is closed as the room is forgotten.
    expect(await socket.closed()).toMatchObject({ code: 4401, reason: "ACCOUNT_DELETED" });
    // The cost records stay, with no owner.
    const orphanCalls = await testDb().select().from(aiCalls).where(sql`${aiCalls.userId} is null`);
    expect(orphanCalls.length).toBeGreaterThan(0);

    // The other account keeps everything.
    const kept = await leftOf(bystander);
    for (const [store, n] of Object.entries(kept)) expect({ store, kept: n > 0 }).toEqual({ store, kept: true });
  });

  it("resumes a purge that crashed half-way, and a redelivery after it finds nothing left to do", async () => {
    const account = await busyUser();
    await deleteAccount(account.token);
    // Taken by the purge (as the fan-out does); the pages are driven here, so a crash can be placed.
    await testDb().update(users).set({ deletedBy: "purging" }).where(eq(users.id, account.userId));
    const failingBucket = {
      list: env.IMAGES.list.bind(env.IMAGES),
      delete: async () => {
        throw new Error("R2 is down");
      },
    } as unknown as PurgeDeps["bucket"];
    await expect(purgeAccount(purgeDeps({ bucket: failingBucket }), account.userId, undefined)).rejects.toThrow("R2 is down");
    // The crash came after the rooms and before anything else.
    expect(await leftOf(account)).toMatchObject({ roomTables: 0, users: 1 });

    const resumed = await purgeAccount(purgeDeps(), account.userId, { step: "objects" });
    expect(resumed).toMatchObject({ state: "done", found: true });
    expect(await leftOf(account)).toEqual(nothing);

    const again = await purgeAccount(purgeDeps(), account.userId, { step: "objects" });
    expect(again).toEqual({ state: "done", found: false, counts: { rooms: 0, objects: 0, redisEntries: 0, rows: 0 } });
    expect(await json(await deliverJob("purge-account", { userId: account.userId, run: "2026-01-01", state: { step: "rows" } }))).toMatchObject({
      data: { skipped: "nothing to purge" },
    });
  });

  it("works in bounded pages: a small page budget hands the rest on, and the pages add up to everything", async () => {
    const account = await busyUser();
    await deleteAccount(account.token);
    await testDb().update(users).set({ deletedBy: "purging" }).where(eq(users.id, account.userId));
    let state: Awaited<ReturnType<typeof purgeAccount>>["state"] | undefined;
    const steps: string[] = [];
    let deliveries = 0;
    do {
      const result = await purgeAccount(purgeDeps(), account.userId, state === "done" ? undefined : state, 1);
      state = result.state;
      steps.push(state === "done" ? "done" : state.step);
      deliveries++;
    } while (state !== "done" && deliveries < 50);
    expect(steps).toEqual(["rooms", "objects", "keys", "rows", "done"]);
    expect(await leftOf(account)).toEqual(nothing);
  });

  it("refuses to restore an account the purge has taken, even with a token issued after the deletion", async () => {
    const sub = `user_${crypto.randomUUID()}`;
    const token = await mintToken(sub);
    const me = await json<{ id: string }>(await callAs(token, "/api/v1/users/me"));
    if (!me.success) throw new Error("no user");
    await deleteAccount(token);
    await testDb().update(users).set({ deletedAt: new Date(Date.now() - 31 * DAY_MS) }).where(eq(users.id, me.data.id));
    // Before the purge takes it, a sign-in after the deletion restores it …
    const restoring = await mintToken(sub, { nowSeconds: Math.floor(Date.now() / 1000) + 1 });
    expect((await callAs(restoring, "/api/v1/users/me")).status).toBe(200);
    await deleteAccount(restoring);
    await testDb().update(users).set({ deletedAt: new Date(Date.now() - 31 * DAY_MS) }).where(eq(users.id, me.data.id));
    await testDb().update(users).set({ deletedBy: "purging" }).where(eq(users.id, me.data.id));
    // … once the purge has it, no token brings it back.
    const later = await mintToken(sub, { nowSeconds: Math.floor(Date.now() / 1000) + 5 });
    expect(await json(await callAs(later, "/api/v1/users/me"))).toMatchObject({ success: false, error: { code: "ACCOUNT_DELETED" } });
  });
});
