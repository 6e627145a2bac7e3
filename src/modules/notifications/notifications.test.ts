import { eq, inArray, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { expoControl, expoRequests, resetExpo } from "../../../test/expo";
import { deliverJob } from "../../../test/jobs";
import { resetDatabase, testConfig, testDb } from "../../../test/helpers";
import { pushTickets, pushTokens, users } from "../../db/schema";
import type { LogFields, Logger } from "../../lib/logger";
import { PushError } from "./expo";
import { checkReceipts, type PushDeps, type PushMessage, sendPush } from "./service";

const requests = expoRequests;
const fault = (body: unknown) => expoControl("/__faults", body);

type Line = { level: string; msg: string; fields?: LogFields };
function recordingLogger(lines: Line[] = []): Logger & { lines: Line[] } {
  const at = (level: string) => (msg: string, fields?: LogFields) => void lines.push({ level, msg, fields });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => recordingLogger(lines) };
}

function deps(overrides: Partial<PushDeps["config"]> = {}) {
  const logger = recordingLogger();
  return { config: { ...testConfig(), ...overrides }, db: testDb(), logger, backoffMs: 5 } satisfies PushDeps;
}

/** A user with `count` live push tokens, as messages to each. */
async function tokens(count: number): Promise<PushMessage[]> {
  const db = testDb();
  const [user] = await db.insert(users).values({ clerkId: `user_${crypto.randomUUID()}` }).returning();
  const rows = await db
    .insert(pushTokens)
    .values(Array.from({ length: count }, () => ({ userId: user!.id, token: `ExponentPushToken[${crypto.randomUUID()}]`, platform: "ios" as const })))
    .returning();
  return rows.map((row) => ({ pushTokenId: row.id, to: row.token, title: "Tip", body: "Ask an open question." }));
}

const disabledIds = async () =>
  (await testDb().select({ id: pushTokens.id }).from(pushTokens).where(sql`${pushTokens.disabledAt} is not null`)).map((row) => row.id);

/** Makes every stored ticket look sent `minutes` ago. */
const ageTickets = (minutes: number) =>
  testDb().update(pushTickets).set({ createdAt: new Date(Date.now() - minutes * 60_000) });

/** Each Expo error the client must tell apart, with the catalog code it logs. */
const EXPO_ERRORS = {
  DeviceNotRegistered: "PUSH_DEVICE_NOT_REGISTERED",
  MessageTooBig: "PUSH_MESSAGE_TOO_BIG",
  MessageRateExceeded: "PUSH_RATE_EXCEEDED",
  InvalidCredentials: "PUSH_INVALID_CREDENTIALS",
  MismatchSenderId: "PUSH_REJECTED",
} as const;

describe("sendPush against the local Expo", () => {
  beforeEach(async () => {
    await resetDatabase();
    await resetExpo();
  });

  it("sends 250 messages as gzipped requests of at most 100, and keeps every ticket", async () => {
    const messages = await tokens(250);
    const result = await sendPush(deps(), messages);

    const sent = await requests();
    expect(sent.map((r) => [r.path, r.messages?.length, r.gzip, r.status])).toEqual([
      ["send", 100, true, 200],
      ["send", 100, true, 200],
      ["send", 50, true, 200],
    ]);
    expect(sent.flatMap((r) => r.messages!.map((m) => m.to)).sort()).toEqual(messages.map((m) => m.to).sort());
    expect(result).toEqual({ accepted: 250, refused: 0, disabled: 0 });
    const stored = await testDb().select().from(pushTickets);
    expect(stored).toHaveLength(250);
    expect(new Set(stored.map((t) => t.pushTokenId))).toEqual(new Set(messages.map((m) => m.pushTokenId)));
  });

  it("sends EXPO_ACCESS_TOKEN as a bearer token only when it is set", async () => {
    const [message] = await tokens(1);
    await sendPush(deps(), [message!]);
    await sendPush(deps({ EXPO_ACCESS_TOKEN: "expo-access-token" }), [message!]);
    expect((await requests()).map((r) => r.authorization)).toEqual([null, "Bearer expo-access-token"]);
  });

  it("retries a 429, then a 503, with backoff, and sends once accepted", async () => {
    const [message] = await tokens(1);
    await fault({ status: 429, path: "send" });
    await fault({ status: 503, path: "send" });
    const d = deps();
    expect(await sendPush(d, [message!])).toEqual({ accepted: 1, refused: 0, disabled: 0 });
    expect((await requests()).map((r) => r.status)).toEqual([429, 503, 200]);
    expect(d.logger.lines.filter((l) => l.msg === "expo request retried").map((l) => l.fields?.waitMs)).toEqual([5, 10]);
    expect(await testDb().select().from(pushTickets)).toHaveLength(1);
  });

  it("gives up with PUSH_UNAVAILABLE after its attempts, and never retries a 4xx other than 429", async () => {
    const [message] = await tokens(1);
    for (let i = 0; i < 3; i++) await fault({ status: 502, path: "send" });
    const error = await sendPush(deps(), [message!]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PushError);
    expect((error as PushError).code).toBe("PUSH_UNAVAILABLE");
    expect((await requests()).map((r) => r.status)).toEqual([502, 502, 502]);

    await resetExpo();
    await fault({ status: 401, path: "send" });
    await expect(sendPush(deps(), [message!])).rejects.toMatchObject({ code: "PUSH_UNAVAILABLE" });
    expect((await requests()).map((r) => r.status)).toEqual([401]);
  });

  it("reads each ticket: DeviceNotRegistered disables that token at once; every Expo error is logged with its code, never the token", async () => {
    const messages = await tokens(Object.keys(EXPO_ERRORS).length + 1);
    const [healthy, ...failing] = messages;
    const expected = Object.entries(EXPO_ERRORS).map(([error, code], i) => ({ message: failing[i]!, error, code }));
    for (const { message, error } of expected) await fault({ token: message.to, error, in: "ticket" });

    const d = deps();
    expect(await sendPush(d, messages)).toEqual({ accepted: 1, refused: expected.length, disabled: 1 });

    expect(await disabledIds()).toEqual([failing[0]!.pushTokenId]);
    const tickets = await testDb().select().from(pushTickets);
    expect(tickets.map((t) => t.pushTokenId)).toEqual([healthy!.pushTokenId]);
    const refusals = d.logger.lines.filter((l) => l.msg === "push refused");
    expect(refusals.map((l) => [l.fields?.pushTokenId, l.fields?.code, l.fields?.on, l.level])).toEqual(
      expected.map(({ message, code }) => [message.pushTokenId, code, "ticket", code === "PUSH_INVALID_CREDENTIALS" ? "error" : "warn"]),
    );
    const logged = JSON.stringify(d.logger.lines);
    for (const message of messages) expect(logged).not.toContain(message.to);
  });

  it("reads receipts of tickets 15 minutes old, 1,000 ids per request; DeviceNotRegistered disables the token, each error is logged", async () => {
    const messages = await tokens(1_500);
    await sendPush(deps(), messages);
    const expected = Object.entries(EXPO_ERRORS).map(([error, code], i) => ({ message: messages[i]!, error, code }));
    for (const { message, error } of expected) await fault({ token: message.to, error, in: "receipt" });

    // Fresh tickets are not asked for yet.
    const early = deps();
    expect(await checkReceipts(early)).toEqual({ due: 0, checked: 0, disabled: 0 });
    expect((await requests()).filter((r) => r.path === "getReceipts")).toEqual([]);

    await ageTickets(16);
    const d = deps();
    expect(await checkReceipts(d)).toEqual({ due: 1_500, checked: 1_500, disabled: 1 });
    const asked = (await requests()).filter((r) => r.path === "getReceipts");
    expect(asked.map((r) => [r.ids!.length, r.gzip])).toEqual([
      [1_000, true],
      [500, true],
    ]);
    expect(await disabledIds()).toEqual([messages[0]!.pushTokenId]);
    const refusals = d.logger.lines.filter((l) => l.msg === "push refused");
    const byCode = (a: unknown[], b: unknown[]) => String(a[1]).localeCompare(String(b[1]));
    expect(refusals.map((l) => [l.fields?.pushTokenId, l.fields?.code, l.fields?.on]).sort(byCode)).toEqual(
      expected.map(({ message, code }) => [message.pushTokenId, code, "receipt"]).sort(byCode),
    );
    const unchecked = await testDb().select().from(pushTickets).where(sql`${pushTickets.checkedAt} is null`);
    expect(unchecked).toEqual([]);

    // Checked tickets are not asked for again.
    expect(await checkReceipts(deps())).toEqual({ due: 0, checked: 0, disabled: 0 });
  });

  it("keeps a ticket without a receipt for a later run, and stops asking a day on", async () => {
    const [message] = await tokens(1);
    await testDb().insert(pushTickets).values([
      { id: "unknown-recent", pushTokenId: message!.pushTokenId, createdAt: new Date(Date.now() - 20 * 60_000) },
      { id: "unknown-old", pushTokenId: message!.pushTokenId, createdAt: new Date(Date.now() - 25 * 60 * 60_000) },
    ]);
    expect(await checkReceipts(deps())).toEqual({ due: 2, checked: 1, disabled: 0 });
    const rows = await testDb().select().from(pushTickets).where(inArray(pushTickets.id, ["unknown-recent", "unknown-old"]));
    expect(Object.fromEntries(rows.map((r) => [r.id, r.checkedAt !== null]))).toEqual({ "unknown-recent": false, "unknown-old": true });
  });
});

describe("the push-receipts job", () => {
  beforeEach(async () => {
    await resetDatabase();
    await resetExpo();
  });

  it("disables a token from its receipt, and is idempotent on redelivery", async () => {
    const [dead, alive] = await tokens(2);
    await sendPush(deps(), [dead!, alive!]);
    await fault({ token: dead!.to, error: "DeviceNotRegistered", in: "receipt" });
    await ageTickets(16);

    const messageId = `msg_${crypto.randomUUID()}`;
    const first = await deliverJob("push-receipts", {}, { messageId });
    expect(first.status).toBe(200);
    expect(((await first.json()) as { data: unknown }).data).toMatchObject({ due: 2, checked: 2, disabled: 1 });
    const [disabled] = await testDb().select().from(pushTokens).where(eq(pushTokens.id, dead!.pushTokenId));
    expect(disabled!.disabledAt).not.toBeNull();

    // The same message again: finished work is skipped. A new run finds nothing due.
    const again = await deliverJob("push-receipts", {}, { messageId });
    expect(((await again.json()) as { data: unknown }).data).toMatchObject({ skipped: true });
    const next = await deliverJob("push-receipts", {}, {});
    expect(((await next.json()) as { data: unknown }).data).toMatchObject({ due: 0, checked: 0, disabled: 0 });

    expect((await requests()).filter((r) => r.path === "getReceipts")).toHaveLength(1);
    const [still] = await testDb().select().from(pushTokens).where(eq(pushTokens.id, dead!.pushTokenId));
    expect(still!.disabledAt).toEqual(disabled!.disabledAt);
    expect(await disabledIds()).toEqual([dead!.pushTokenId]);
  });

  it("a delivery Expo fails fails the job (QStash retries it); the retry reads the receipt and disables the token", async () => {
    const [dead] = await tokens(1);
    await sendPush(deps(), [dead!]);
    await fault({ token: dead!.to, error: "DeviceNotRegistered", in: "receipt" });
    await ageTickets(16);
    for (let i = 0; i < 3; i++) await fault({ status: 500, path: "getReceipts" });

    const messageId = `msg_${crypto.randomUUID()}`;
    const failed = await deliverJob("push-receipts", {}, { messageId });
    expect(failed.status).toBe(500);
    expect(await disabledIds()).toEqual([]);

    const retried = await deliverJob("push-receipts", {}, { messageId, retried: 1 });
    expect(retried.status).toBe(200);
    expect(await disabledIds()).toEqual([dead!.pushTokenId]);
  });
});
