import { env } from "cloudflare:test";
import { eq, isNotNull, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { openerGenerations, pushTickets, pushTokens, sessions, suggestionGenerations, users } from "../../src/db/schema";
import { features, jobsOf } from "../../src/features";
import { createJobPublisher } from "../../src/lib/jobs";
import { createLogger } from "../../src/lib/logger";
import { openerRoom } from "../../src/modules/openers/room";
import { sendPush } from "../../src/modules/notifications/service";
import { sessionRoom } from "../../src/modules/sessions/room";
import type { RoomAddress } from "../../src/realtime/protocol";
import { parseRoomFrames } from "../../src/realtime/protocol";
import { roomStub } from "../../src/realtime/rooms";
import { expoControl, expoPushes, resetExpo } from "../expo";
import { callAs, callTheEntryDirectly, clearBucket, json, resetDatabase, signedInUser, testConfig, testDb, uploadImage } from "../helpers";
import { deliver, failureCallback, qstashMessages, resetQStash, signed } from "../jobs";
import { loadShippedTips } from "../tips";
import { injectFault, resetUpstream, upstreamRequests } from "../upstream";
import { countFigures } from "./figures";
import { CANARY } from "./leaks";

/**
 * SPEC §7: QStash delivers at least once, so every job handler is idempotent. For every job the
 * features register, real state is set up, the messages the job publishes are captured from the
 * local QStash, and each is delivered twice in a row, twice at once, out of order (siblings
 * reversed, then every delivery once more, late and backwards), and with its failure callback
 * before, after and alongside it. What the run left — rows in every table, events in every room
 * it touched, pushes sent, AI calls made, R2 objects — must equal what one clean delivery of each
 * message leaves, in the same order.
 *
 * AI calls: a duplicate never bills twice. The handlers' design (the job's lease on its work
 * item, the `skipped` answers of finished work, the room's event keys) makes a second delivery of
 * one message a no-op or a 503 that QStash retries later; only a run that died and whose lease
 * lapsed is taken over, and that takeover's calls are real new calls. No run dies here, so every
 * extra `ai_calls` row or upstream request is counted as a duplicate.
 */

// Thousands of requests: past the pool's per-request slowdown of SELF (see callTheEntryDirectly).
callTheEntryDirectly();

// ---- capturing and delivering messages ---------------------------------------------------------

type Published = { messageId: string; url: string; path: string; body: string; base64: string };
type Delivery = { message: Published; as: "run" | "failure" };
type Answer = { messageId: string; path: string; retried: number; status: number; code?: string };

const decoder = new TextDecoder();
const fromBase64 = (text: string) => decoder.decode(Uint8Array.from(atob(text), (char) => char.charCodeAt(0)));

/** Job messages the local QStash holds that the run has not taken yet, oldest first. */
async function newMessages(taken: Set<string>): Promise<Published[]> {
  const found = (await qstashMessages()).filter((message) => message.kind === "message" && !taken.has(message.messageId));
  for (const message of found) taken.add(message.messageId);
  return found.map((message) => ({ messageId: message.messageId, url: message.url, path: new URL(message.url).pathname, body: fromBase64(message.body), base64: message.body }));
}

/** One delivery as QStash makes it: signed for its URL, under its message id (the callback has its own). */
async function deliverOnce({ message, as }: Delivery, retried: number): Promise<Answer> {
  const failed = as === "failure";
  const path = failed ? "/jobs/failed" : message.path;
  const messageId = failed ? `${message.messageId}_failure` : message.messageId;
  const body = failed ? JSON.stringify(failureCallback({ messageId: message.messageId, url: message.url, body: message.base64 })) : message.body;
  const response = await deliver(path, body, await signed({ url: `${env.PUBLIC_BASE_URL}${path}`, body }), messageId, retried);
  const answer = (await response.json().catch(() => ({}))) as { error?: { code?: string } };
  return { messageId, path, retried, status: response.status, code: answer.error?.code };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const RETRIES = 12;

/** Delivers, and as QStash does, delivers again (Upstash-Retried + 1) after a 5xx or no answer. */
async function deliverLikeQStash(delivery: Delivery, answers: Answer[]): Promise<void> {
  for (let retried = 0; retried <= RETRIES; retried++) {
    const answer = await deliverOnce(delivery, retried);
    answers.push(answer);
    if (answer.status >= 200 && answer.status < 500) return;
    await sleep(250);
  }
}

// ---- delivery plans ------------------------------------------------------------------------------

/** Deliveries made at once; a plan is steps, one after another. */
type Step = Delivery[];
const run = (message: Published): Delivery => ({ message, as: "run" });
const failure = (message: Published): Delivery => ({ message, as: "failure" });

type Order = "run first" | "failure first";
type Mode = {
  name: string;
  /** The clean run(s) it must match: one of them, when the order is left to the race. */
  matches: Order[];
  /** The steps for one wave of messages (the ones published so far and not yet taken). */
  plan(wave: Published[]): Step[];
  /** Every delivery made is made once more at the end, in reverse order. */
  lateRepeats?: boolean;
};

/** The clean runs: each message delivered once, its failure callback once, in either order. */
const REFERENCES: Record<Order, Mode> = {
  "run first": { name: "once, failure callback after", matches: [], plan: (wave) => wave.flatMap((m) => [[run(m)], [failure(m)]]) },
  "failure first": { name: "once, failure callback before", matches: [], plan: (wave) => wave.flatMap((m) => [[failure(m)], [run(m)]]) },
};

const MODES: Mode[] = [
  { name: "twice in a row, the failure callback twice after", matches: ["run first"], plan: (wave) => wave.flatMap((m) => [[run(m)], [run(m)], [failure(m)], [failure(m)]]) },
  {
    name: "two at once, two failure callbacks alongside",
    matches: ["run first", "failure first"],
    plan: (wave) => [wave.flatMap((m) => [run(m), run(m), failure(m), failure(m)])],
  },
  {
    name: "out of order: later messages first, each failure callback before its message, then every delivery again backwards",
    matches: ["failure first"],
    plan: (wave) => [...wave].reverse().flatMap((m) => [[failure(m)], [run(m)]]),
    lateRepeats: true,
  },
];

type Driven = { answers: Answer[]; deliveries: number; distinct: number };

/** Delivers the messages the scenario published, then those its deliveries published, wave by wave. */
async function drive(mode: Mode): Promise<Driven> {
  const taken = new Set<string>();
  const answers: Answer[] = [];
  const made: Delivery[] = [];
  for (let wave = await newMessages(taken); wave.length > 0; wave = await newMessages(taken)) {
    for (const step of mode.plan(wave)) {
      made.push(...step);
      await Promise.all(step.map((delivery) => deliverLikeQStash(delivery, answers)));
    }
  }
  if (mode.lateRepeats) {
    for (const delivery of [...made].reverse()) {
      made.push(delivery);
      await deliverLikeQStash(delivery, answers);
    }
  }
  const distinct = new Set(made.map(({ message, as }) => `${message.messageId}:${as}`)).size;
  // Every attempt counts as a delivery: QStash's retries of a refused duplicate are deliveries too.
  return { answers, deliveries: answers.length, distinct };
}

// ---- what a run leaves ---------------------------------------------------------------------------

type Effects = Record<string, number>;

/** Rows per table (every application table), events per room kind and type, pushes, AI requests, R2 objects. */
async function effectsOf(rooms: RoomAddress[]): Promise<Effects> {
  const db = testDb();
  const effects: Effects = {};
  const tables = (await db.execute<{ tablename: string }>(sql`select tablename from pg_tables where schemaname = 'public' order by tablename`)).rows;
  const counted = await db.execute<{ name: string; n: number }>(
    sql.raw(tables.map(({ tablename }) => `select '${tablename}' as name, count(*)::int as n from "public"."${tablename}"`).join(" union all ")),
  );
  for (const { name, n } of counted.rows) effects[`rows in ${name}`] = Number(n);
  for (const room of rooms) {
    for (const frame of parseRoomFrames(await roomStub(env, room).eventsAfter(0, 100_000))) {
      const key = `${room.kind} room events ${frame.type}`;
      effects[key] = (effects[key] ?? 0) + 1;
    }
  }
  effects["pushes sent"] = (await expoPushes()).length;
  effects["AI upstream requests"] = (await upstreamRequests()).length;
  effects["R2 objects"] = (await env.IMAGES.list()).objects.length;
  return effects;
}

type Difference = { what: string; clean: number; got: number };

/** What differs from the clean run: `extra` are duplicates, `missing` are effects lost. */
function differences(got: Effects, clean: Effects) {
  const extra: Difference[] = [];
  const missing: Difference[] = [];
  for (const what of new Set([...Object.keys(got), ...Object.keys(clean)])) {
    const [g, c] = [got[what] ?? 0, clean[what] ?? 0];
    if (g > c) extra.push({ what, clean: c, got: g });
    if (g < c) missing.push({ what, clean: c, got: g });
  }
  return { extra, missing, size: [...extra, ...missing].reduce((sum, d) => sum + Math.abs(d.got - d.clean), 0) };
}

// ---- scenarios: real state for each job ----------------------------------------------------------

/**
 * What a scenario set up: the rooms its job may publish to and, for work that changes rows rather
 * than adding them, counts of that state (compared like the rest).
 */
type Fixture = { rooms: RoomAddress[]; counts?(): Promise<Effects> };
type Scenario = {
  setup(): Promise<Fixture>;
  /** Some effects of one clean delivery, exactly: the scenario's job did its work (or it proves nothing). */
  proves: Effects;
};

const DAY_MS = 86_400_000;
/** Publishes a job as its schedule (or `npm run jobs:run`) would. */
function publish(name: string, payload: Record<string, unknown>) {
  const job = jobsOf(features).find((definition) => definition.name === name);
  if (!job) throw new Error(`no job ${name}`);
  return createJobPublisher(testConfig())(job, payload, { deduplicationId: `resilience-${name}-${crypto.randomUUID()}` });
}

const conversation = [
  { sender: "match", text: `${CANARY} So, tacos or ramen tonight?` },
  { sender: "user", text: `Ramen, obviously ${CANARY}` },
  { sender: "match", text: `Bold. Where do you usually go ${CANARY}?` },
] as const;

async function textSession(token: string): Promise<string> {
  const created = await json<{ id: string }>(await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages: conversation } }));
  if (!created.success) throw new Error(`no session: ${JSON.stringify(created)}`);
  return created.data.id;
}

/** The OCR prompt's words: the answers injected for OCR calls leave every other call alone. */
const OCR_CALL = "Transcribe the chat";
const screen = (lines: Array<[sender: "user" | "match", text: string]>) =>
  JSON.stringify({ matchName: "Sam", platform: "hinge", confidence: 0.9, messages: lines.map(([sender, text]) => ({ sender, text: `${text} ${CANARY}`, confidence: 0.95 })) });

/** A session stuck in OCR, a generation and an opener generation whose runs died long ago (or never started). */
async function staleWork(userId: string) {
  const db = testDb();
  const longAgo = sql`now() - interval '1 hour'`;
  const [queued, processing, generating] = await db
    .insert(sessions)
    .values([
      { userId, type: "screenshot", status: "ocr_queued", updatedAt: longAgo },
      { userId, type: "screenshot", status: "ocr_processing", leaseOwner: "msg_dead:run", leaseExpiresAt: longAgo, updatedAt: longAgo },
      { userId, type: "text", status: "generating" },
    ])
    .returning();
  const [generation] = await db
    .insert(suggestionGenerations)
    .values({ sessionId: generating!.id, count: 2, status: "streaming", leaseOwner: "msg_dead:run", leaseExpiresAt: longAgo, updatedAt: longAgo })
    .returning();
  const openers = await db
    .insert(openerGenerations)
    .values([
      { userId, profile: { name: "Alex", bio: `${CANARY} climber` }, tone: "witty", count: 2, updatedAt: longAgo, createdAt: longAgo },
      { userId, profile: { name: "Sam", bio: `${CANARY} baker` }, tone: "witty", count: 2, status: "streaming", leaseOwner: "msg_dead:run", leaseExpiresAt: longAgo, updatedAt: longAgo },
    ])
    .returning();
  return { sessionIds: [queued!.id, processing!.id, generating!.id], generationId: generation!.id, openerIds: openers.map((row) => row.id) };
}

/** A signed-in user with a push token; `language` sets their chosen language (tips get translated). */
async function userWithToken(options: { language?: string } = {}) {
  const user = await signedInUser();
  if (options.language) await testDb().update(users).set({ preferences: { language: options.language } }).where(eq(users.id, user.userId));
  const response = await callAs(user.token, "/api/v1/users/me/push-tokens", { method: "POST", json: { token: `ExponentPushToken[${crypto.randomUUID()}]`, platform: "ios" } });
  if (response.status >= 300) throw new Error(`no push token: ${response.status}`);
  return user;
}

/** A deleted account past its grace period, with something in every store: rows, an R2 object, room events. */
async function deletedAccount() {
  const user = await userWithToken();
  const sessionId = await textSession(user.token);
  await uploadImage(user.token, 7);
  await roomStub(env, sessionRoom(sessionId)).publish({ type: "status", data: { status: "ready" } }, { key: "resilience:history" });
  expect((await callAs(user.token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
  await testDb().update(users).set({ deletedAt: new Date(Date.now() - 31 * DAY_MS) }).where(eq(users.id, user.userId));
  // Something to purge in each store, or the zeros a clean run must reach would prove nothing.
  expect([(await env.IMAGES.list()).objects.length, (await roomStub(env, sessionRoom(sessionId)).eventsAfter(0)).length]).toEqual([1, 1]);
  return { ...user, rooms: [sessionRoom(sessionId)] };
}

const TIP_HOUR_UTC = "2026-11-29T09:00:00Z";

const SCENARIOS: Record<string, Scenario> = {
  ocr: {
    async setup() {
      const { token } = await signedInUser();
      const keys = [await uploadImage(token, 1), await uploadImage(token, 2)];
      // Two screenshots that overlap by one message: three messages in all.
      await injectFault({ output: screen([["match", "Loved your hiking photos"], ["user", "Patagonia last spring"]]) }, { match: OCR_CALL });
      await injectFault({ output: screen([["user", "Patagonia last spring"], ["match", "Was it cold?"]]) }, { match: OCR_CALL });
      const created = await json<{ id: string }>(await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: keys } }));
      if (!created.success) throw new Error(`no session: ${JSON.stringify(created)}`);
      return { rooms: [sessionRoom(created.data.id)] };
    },
    proves: { "rows in messages": 3, "session room events ocr.completed": 1, "rows in ai_calls": 2 },
  },
  "sweep-ocr": {
    async setup() {
      const { userId } = await signedInUser();
      const stale = await staleWork(userId);
      await publish("sweep-ocr", {});
      return { rooms: stale.sessionIds.map(sessionRoom) };
    },
    proves: { "session room events status": 2 },
  },
  suggestions: {
    async setup() {
      const { token } = await signedInUser();
      const sessionId = await textSession(token);
      const started = await callAs(token, `/api/v1/sessions/${sessionId}/generate-suggestions`, { method: "POST", json: { count: 2 } });
      if (started.status !== 202) throw new Error(`not started: ${started.status}`);
      return { rooms: [sessionRoom(sessionId)] };
    },
    proves: { "rows in suggestions": 2, "session room events suggestion.completed": 1 },
  },
  "sweep-suggestions": {
    async setup() {
      const { userId } = await signedInUser();
      const stale = await staleWork(userId);
      await publish("sweep-suggestions", {});
      return { rooms: stale.sessionIds.map(sessionRoom) };
    },
    proves: { "session room events generation.failed": 1 },
  },
  openers: {
    async setup() {
      const { token } = await signedInUser();
      const started = await json<{ generationId: string }>(
        await callAs(token, "/api/v1/magic-openers/generate", {
          method: "POST",
          json: { profile: { name: "Alex", bio: `Climber and dim sum fan ${CANARY}`, interests: ["bouldering", "dim sum"] }, count: 2 },
        }),
      );
      if (!started.success) throw new Error(`not started: ${JSON.stringify(started)}`);
      return { rooms: [openerRoom(started.data.generationId)] };
    },
    proves: { "rows in magic_openers": 2, "opener room events opener.completed": 1 },
  },
  "sweep-openers": {
    async setup() {
      const { userId } = await signedInUser();
      const stale = await staleWork(userId);
      await publish("sweep-openers", {});
      return { rooms: stale.openerIds.map(openerRoom) };
    },
    proves: { "opener room events generation.failed": 2 },
  },
  "daily-tips": {
    async setup() {
      await loadShippedTips();
      // Three users in UTC (the default), due at 09:00: two in English, one in Spanish (their tip is translated by a model, once).
      for (const language of [undefined, undefined, "es"]) await userWithToken({ language });
      await publish("daily-tips", { at: TIP_HOUR_UTC });
      return { rooms: [] };
    },
    proves: { "pushes sent": 3, "rows in tip_deliveries": 3, "rows in tip_translations": 1 },
  },
  "tip-delivery": {
    async setup() {
      await loadShippedTips();
      const { userId } = await userWithToken({ language: "es" });
      await publish("tip-delivery", { userId, localDate: "2026-11-29" });
      return { rooms: [] };
    },
    proves: { "pushes sent": 1, "rows in tip_translations": 1, "rows in ai_calls": 1 },
  },
  "push-receipts": {
    async setup() {
      // Pushes sent 20 minutes ago: one device Expo no longer knows, one fine.
      const [gone, fine] = [await userWithToken(), await userWithToken()];
      const tokens = await testDb().select().from(pushTokens).where(sql`${pushTokens.userId} in (${gone.userId}, ${fine.userId})`);
      const deps = { config: testConfig(), db: testDb(), logger: createLogger({ level: "error" }) };
      await sendPush(deps, tokens.map((row) => ({ pushTokenId: row.id, to: row.token, body: `${CANARY} tip` })));
      await testDb().update(pushTickets).set({ createdAt: new Date(Date.now() - 20 * 60_000) });
      const goneToken = tokens.find((row) => row.userId === gone.userId)!.token;
      await expoControl("/__faults", { token: goneToken, error: "DeviceNotRegistered", in: "receipt" });
      await publish("push-receipts", {});
      return {
        rooms: [],
        counts: async () => ({
          "push tokens disabled": (await testDb().select().from(pushTokens).where(isNotNull(pushTokens.disabledAt))).length,
          "push tickets checked": (await testDb().select().from(pushTickets).where(isNotNull(pushTickets.checkedAt))).length,
        }),
      };
    },
    proves: { "push tokens disabled": 1, "push tickets checked": 2 },
  },
  "purge-users": {
    async setup() {
      const account = await deletedAccount();
      await publish("purge-users", { at: new Date().toISOString() });
      return { rooms: account.rooms };
    },
    proves: { "rows in users": 0, "rows in sessions": 0, "R2 objects": 0, "session room events status": 0 },
  },
  "purge-account": {
    async setup() {
      const account = await deletedAccount();
      await testDb().update(users).set({ deletedBy: "purging" }).where(eq(users.id, account.userId));
      await publish("purge-account", { userId: account.userId, run: new Date().toISOString().slice(0, 10) });
      return { rooms: account.rooms };
    },
    proves: { "rows in users": 0, "rows in sessions": 0, "R2 objects": 0, "session room events status": 0 },
  },
  "screenshot-retention": {
    async setup() {
      const { token } = await signedInUser();
      // Two uploads no session took, and one a session holds: the sweep two hours on takes the first two.
      const kept = await uploadImage(token, 3);
      await uploadImage(token, 4);
      await uploadImage(token, 5);
      const created = await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: [kept] } });
      if (created.status !== 201) throw new Error(`no session: ${created.status}`);
      // The OCR job the session published is not this scenario's: only the sweep is delivered.
      await resetQStash();
      await publish("screenshot-retention", { at: new Date(Date.now() + 2 * 3_600_000).toISOString() });
      return { rooms: [] };
    },
    proves: { "R2 objects": 1, "rows in session_images": 1 },
  },
};

/** Every store empty and every stand-in forgotten, then the scenario's state. */
async function fresh(scenario: Scenario): Promise<Fixture> {
  await Promise.all([resetDatabase(), clearBucket(), resetQStash(), resetUpstream(), resetExpo()]);
  return scenario.setup();
}

/** What a clean run (or a mode) leaves, and what its deliveries were answered. */
async function outcome(scenario: Scenario, mode: Mode) {
  const fixture = await fresh(scenario);
  const driven = await drive(mode);
  return { driven, effects: { ...(await effectsOf(fixture.rooms)), ...(await fixture.counts?.()) } };
}

// A refused duplicate (another delivery's run holds the work) is the one non-2xx a handler may answer.
const acceptable = (answer: Answer) => (answer.status >= 200 && answer.status < 300) || (answer.status === 503 && answer.code === "JOB_RUN_IN_PROGRESS");

describe("every job message delivered twice, out of order and concurrently, with its failure callback", () => {
  const jobs = jobsOf(features);

  it("has a scenario for every registered job, and only for those", () => {
    const names = jobs.map((job) => job.name);
    expect(names.filter((name) => !SCENARIOS[name]), "jobs with no scenario").toEqual([]);
    expect(Object.keys(SCENARIOS).filter((name) => !names.includes(name)), "scenarios for no job").toEqual([]);
  });

  for (const job of jobs) {
    it(`${job.name}: no duplicate row, room event, push or AI call`, async ({ task }) => {
      const scenario = SCENARIOS[job.name];
      if (!scenario) throw new Error(`no scenario for the job ${job.name}: add one to SCENARIOS`);

      const clean = {} as Record<Order, Effects>;
      for (const order of Object.keys(REFERENCES) as Order[]) {
        const reference = await outcome(scenario, REFERENCES[order]);
        expect(reference.driven.answers.filter((answer) => !acceptable(answer)), `${order}: answers`).toEqual([]);
        clean[order] = reference.effects;
      }
      const done = Object.fromEntries(Object.keys(scenario.proves).map((what) => [what, clean["run first"][what] ?? 0]));
      expect(done, "what one clean delivery of each message did").toEqual(scenario.proves);

      const report: Array<{ mode: string; extra: Difference[]; missing: Difference[]; badAnswers: Answer[] }> = [];
      let duplicateDeliveries = 0;
      let duplicateEffects = 0;
      for (const mode of MODES) {
        const { driven, effects } = await outcome(scenario, mode);
        duplicateDeliveries += driven.deliveries - driven.distinct;
        // The closest of the clean runs the mode may end like.
        const [best] = mode.matches.map((order) => differences(effects, clean[order])).sort((a, b) => a.size - b.size);
        const extra = best!.extra.reduce((sum, d) => sum + d.got - d.clean, 0);
        duplicateEffects += extra;
        report.push({ mode: mode.name, extra: best!.extra, missing: best!.missing, badAnswers: driven.answers.filter((answer) => !acceptable(answer)) });
      }
      countFigures(task, { duplicateDeliveries, duplicateEffects });

      const broken = report.filter((entry) => entry.extra.length + entry.missing.length + entry.badAnswers.length > 0);
      expect(broken, `${job.name}: duplicates (extra), lost effects (missing) or refused deliveries, by mode`).toEqual([]);
      expect(duplicateEffects).toBe(0);
      expect(duplicateDeliveries).toBeGreaterThan(0);
    });
  }
});
