import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Receiver } from "@upstash/qstash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../http.ts";
import { type Delivery, type QStashStandIn, startQStashStandIn } from "./server.ts";

const token = "test-qstash-token";
const keys = { currentSigningKey: "sig_current_test", nextSigningKey: "sig_next_test" };
const receiver = new Receiver({ ...keys, devMode: false });
const quiet = () => {};

type Received = { path: string; method: string; headers: IncomingHttpHeaders; body: string; at: number };
type Answer = { status: number; headers?: Record<string, string>; body?: string };

/** A destination that records every request and answers per path (200 unless told otherwise). */
async function startDestination() {
  const received: Received[] = [];
  const answers = new Map<string, (attempt: number) => Answer>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = req.url ?? "/";
    received.push({ path, method: req.method ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() });
    const answer = answers.get(path)?.(received.filter((r) => r.path === path).length) ?? { status: 200 };
    res.writeHead(answer.status, answer.headers).end(answer.body ?? "");
  });
  const port = await listen(server, 0, "127.0.0.1", "destination");
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    at: (path: string) => received.filter((r) => r.path === path),
    answer: (path: string, answer: (attempt: number) => Answer) => void answers.set(path, answer),
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

async function waitFor<T>(check: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fromBase64 = (text: string) => Buffer.from(text, "base64").toString("utf8");
const verify = (signature: string | string[] | undefined, body: string, url: string) =>
  receiver.verify({ signature: String(signature), body, url });

const control = (standIn: QStashStandIn, path: string, init: RequestInit = {}) =>
  fetch(`${standIn.url}/__control/${path}`, { method: "POST", ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });

describe("QStash stand-in, fetch delivery", () => {
  let qstash: QStashStandIn;
  let client: Client;
  let dest: Awaited<ReturnType<typeof startDestination>>;

  beforeAll(async () => {
    dest = await startDestination();
    qstash = await startQStashStandIn({ port: 0, token, ...keys, retryDelayScale: 0.001, log: quiet });
    client = new Client({ baseUrl: qstash.url, token, devMode: false, enableTelemetry: false });
  });
  afterAll(async () => {
    await qstash.close();
    await dest.close();
  });

  it("delivers publishJSON with a signature the real Receiver accepts, then the success callback", async () => {
    const { messageId, url } = await client.publishJSON({
      url: `${dest.url}/hello?x=1`,
      body: { hello: "world" },
      method: "PUT",
      headers: { "X-Trace": "abc" },
      callback: `${dest.url}/hello-callback`,
    });
    expect(url).toBe(`${dest.url}/hello?x=1`);
    const [delivery] = await waitFor(() => dest.at("/hello?x=1").length > 0 && dest.at("/hello?x=1"));
    expect(delivery!.method).toBe("PUT");
    expect(delivery!.body).toBe('{"hello":"world"}');
    expect(delivery!.headers).toMatchObject({
      "content-type": "application/json",
      "x-trace": "abc",
      "upstash-message-id": messageId,
      "upstash-retried": "0",
    });
    expect(delivery!.headers["upstash-schedule-id"]).toBeUndefined();
    await expect(verify(delivery!.headers["upstash-signature"], delivery!.body, `${dest.url}/hello?x=1`)).resolves.toBe(true);
    // The signature is bound to the URL and the body.
    await expect(verify(delivery!.headers["upstash-signature"], delivery!.body, `${dest.url}/other`)).rejects.toThrow(/subject/);
    await expect(verify(delivery!.headers["upstash-signature"], "{}", `${dest.url}/hello?x=1`)).rejects.toThrow(/body hash/);

    const [callback] = await waitFor(() => dest.at("/hello-callback").length > 0 && dest.at("/hello-callback"));
    await expect(verify(callback!.headers["upstash-signature"], callback!.body, `${dest.url}/hello-callback`)).resolves.toBe(true);
    expect(JSON.parse(callback!.body)).toMatchObject({ status: 200, retried: 0, maxRetries: 3, sourceMessageId: messageId, method: "PUT", url: `${dest.url}/hello?x=1` });
  });

  it("deduplicates by id and by content within the window", async () => {
    const first = await client.publishJSON({ url: `${dest.url}/dedup`, body: { n: 1 }, deduplicationId: "job-1" });
    const second = await client.publishJSON({ url: `${dest.url}/dedup`, body: { n: 2 }, deduplicationId: "job-1" });
    expect(first.deduplicated).toBeFalsy();
    expect(second).toMatchObject({ messageId: first.messageId, deduplicated: true });

    const a = await client.publishJSON({ url: `${dest.url}/dedup`, body: { n: 3 }, contentBasedDeduplication: true });
    const b = await client.publishJSON({ url: `${dest.url}/dedup`, body: { n: 3 }, contentBasedDeduplication: true });
    const c = await client.publishJSON({ url: `${dest.url}/dedup`, body: { n: 4 }, contentBasedDeduplication: true });
    expect(b).toMatchObject({ messageId: a.messageId, deduplicated: true });
    expect(c.messageId).not.toBe(a.messageId);

    await waitFor(() => dest.at("/dedup").length >= 3);
    await sleep(100);
    expect(dest.at("/dedup").map((r) => JSON.parse(r.body).n).sort()).toEqual([1, 3, 4]);
  });

  it("retries failed deliveries with growing Upstash-Retried until one succeeds", async () => {
    dest.answer("/flaky", (attempt) => ({ status: attempt < 3 ? 500 : 204 }));
    const { messageId } = await client.publishJSON({ url: `${dest.url}/flaky`, body: { job: "flaky" }, retryDelay: "pow(2, retried) * 1000" });
    const attempts = await waitFor(() => dest.at("/flaky").length === 3 && dest.at("/flaky"));
    expect(attempts.map((r) => r.headers["upstash-retried"])).toEqual(["0", "1", "2"]);
    expect(new Set(attempts.map((r) => r.headers["upstash-message-id"]))).toEqual(new Set([messageId]));
    for (const attempt of attempts) await verify(attempt.headers["upstash-signature"], attempt.body, `${dest.url}/flaky`);
    const message = await waitFor(() => qstash.messages().find((m) => m.messageId === messageId && m.state !== "pending"));
    expect(message).toMatchObject({ state: "delivered", attempts: 3, lastStatus: 204 });

    await expect(client.publishJSON({ url: `${dest.url}/flaky`, body: {}, retryDelay: "process.exit()" })).rejects.toThrow(/retry delay/);
  });

  it("gives up after the last retry and sends the documented failure callback", async () => {
    dest.answer("/down", () => ({ status: 500, headers: { "x-why": "down" }, body: "boom" }));
    const { messageId } = await client.publishJSON({
      url: `${dest.url}/down`,
      body: { job: "down" },
      retries: 2,
      failureCallback: `${dest.url}/failed`,
    });
    const [callback] = await waitFor(() => dest.at("/failed").length > 0 && dest.at("/failed"));
    expect(dest.at("/down")).toHaveLength(3);
    await expect(verify(callback!.headers["upstash-signature"], callback!.body, `${dest.url}/failed`)).resolves.toBe(true);
    expect(callback!.headers["upstash-message-id"]).not.toBe(messageId);
    const payload = JSON.parse(callback!.body);
    expect(payload).toEqual({
      status: 500,
      header: expect.objectContaining({ "x-why": ["down"] }),
      body: Buffer.from("boom").toString("base64"),
      retried: 2,
      maxRetries: 2,
      dlqId: expect.stringMatching(/^\d+-\d+$/),
      sourceMessageId: messageId,
      url: `${dest.url}/down`,
      method: "POST",
      sourceHeader: { "Content-Type": ["application/json"] },
      sourceBody: Buffer.from('{"job":"down"}').toString("base64"),
      createdAt: expect.any(Number),
      scheduleId: "",
    });
    expect(qstash.messages().find((m) => m.messageId === messageId)).toMatchObject({ state: "failed", attempts: 3, lastStatus: 500, dlqId: payload.dlqId });
  });

  it("does not retry a 489 with Upstash-NonRetryable-Error", async () => {
    dest.answer("/fatal", () => ({ status: 489, headers: { "Upstash-NonRetryable-Error": "true" } }));
    const { messageId } = await client.publishJSON({ url: `${dest.url}/fatal`, body: {}, retries: 3, failureCallback: `${dest.url}/fatal-failed` });
    const [callback] = await waitFor(() => dest.at("/fatal-failed").length > 0 && dest.at("/fatal-failed"));
    expect(JSON.parse(callback!.body)).toMatchObject({ status: 489, retried: 0, maxRetries: 3, sourceMessageId: messageId });
    expect(dest.at("/fatal")).toHaveLength(1);
  });

  it("holds delayed and not-before messages until they are due", async () => {
    const start = Date.now();
    const notBefore = Math.ceil(start / 1000) + 1;
    await client.publishJSON({ url: `${dest.url}/delayed`, body: {}, delay: 1 });
    await client.publishJSON({ url: `${dest.url}/not-before`, body: {}, notBefore });
    const [delayed] = await waitFor(() => dest.at("/delayed").length > 0 && dest.at("/delayed"));
    const [later] = await waitFor(() => dest.at("/not-before").length > 0 && dest.at("/not-before"));
    expect(delayed!.at - start).toBeGreaterThanOrEqual(1_000);
    expect(later!.at).toBeGreaterThanOrEqual(notBefore * 1000);
  });

  it("publishes a batch", async () => {
    const results = await client.batchJSON([
      { url: `${dest.url}/batch/a`, body: { n: "a" } },
      { url: `${dest.url}/batch/b`, body: { n: "b" }, headers: { "X-Kind": "b" } },
    ]);
    expect(results.map((r) => "url" in r && r.url)).toEqual([`${dest.url}/batch/a`, `${dest.url}/batch/b`]);
    const [a] = await waitFor(() => dest.at("/batch/a").length > 0 && dest.at("/batch/a"));
    const [b] = await waitFor(() => dest.at("/batch/b").length > 0 && dest.at("/batch/b"));
    expect(a!.headers["upstash-message-id"]).toBe(results[0]!.messageId);
    expect(b!.headers).toMatchObject({ "x-kind": "b", "content-type": "application/json" });
    await verify(b!.headers["upstash-signature"], '{"n":"b"}', `${dest.url}/batch/b`);
  });

  it("creates, fires, updates, lists and deletes schedules", async () => {
    const { scheduleId } = await client.schedules.create({
      destination: `${dest.url}/tick`,
      cron: "* * * * * *",
      body: JSON.stringify({ tick: true }),
      retries: 1,
    });
    expect(await client.schedules.get(scheduleId)).toMatchObject({
      scheduleId,
      cron: "* * * * * *",
      destination: `${dest.url}/tick`,
      method: "POST",
      body: '{"tick":true}',
      retries: 1,
      isPaused: false,
    });
    const [firing] = await waitFor(() => dest.at("/tick").length > 0 && dest.at("/tick"), 3_000);
    expect(firing!.headers["upstash-schedule-id"]).toBe(scheduleId);
    await verify(firing!.headers["upstash-signature"], firing!.body, `${dest.url}/tick`);

    // The same id again replaces the schedule instead of adding one.
    const again = await client.schedules.create({ destination: `${dest.url}/tick`, cron: "0 0 1 1 *", scheduleId });
    expect(again.scheduleId).toBe(scheduleId);
    const zoned = await client.schedules.create({ destination: `${dest.url}/zoned`, cron: "CRON_TZ=Europe/Berlin 0 9 * * *", scheduleId: "zoned" });
    const list = await client.schedules.list();
    expect(list.map((s) => [s.scheduleId, s.cron]).sort()).toEqual([[scheduleId, "0 0 1 1 *"], [zoned.scheduleId, "CRON_TZ=Europe/Berlin 0 9 * * *"]].sort());
    expect(new Date(list.find((s) => s.scheduleId === "zoned")!.nextScheduleTime!).getUTCMinutes()).toBe(0);

    await client.schedules.delete(scheduleId);
    await client.schedules.delete("zoned");
    expect(await client.schedules.list()).toEqual([]);
    await expect(client.schedules.get(scheduleId)).rejects.toThrow(/not found/);
    await expect(client.schedules.create({ destination: `${dest.url}/tick`, cron: "every minute" })).rejects.toThrow(/cron/);
  });

  it("redelivers a message with the same id and a fresh signature", async () => {
    const { messageId } = await client.publishJSON({ url: `${dest.url}/twice`, body: { once: true } });
    await waitFor(() => dest.at("/twice").length === 1);
    expect((await control(qstash, `redeliver/${messageId}`)).status).toBe(200);
    const [first, second] = await waitFor(() => dest.at("/twice").length === 2 && dest.at("/twice"));
    expect(second!.headers["upstash-message-id"]).toBe(messageId);
    expect(second!.headers["upstash-signature"]).not.toBe(first!.headers["upstash-signature"]);
    await verify(second!.headers["upstash-signature"], second!.body, `${dest.url}/twice`);
    expect(qstash.messages().find((m) => m.messageId === messageId)).toMatchObject({ state: "delivered", attempts: 1 });
    expect((await control(qstash, "redeliver/msg_unknown")).status).toBe(404);
  });

  it("answers 401 without the token and 404 on unknown routes", async () => {
    const anonymous = await fetch(`${qstash.url}/v2/publish/${dest.url}/nope`, { method: "POST", body: "{}" });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: "Unauthorized" });
    expect((await fetch(`${qstash.url}/__control/messages`)).status).toBe(401);
    const wrong = new Client({ baseUrl: qstash.url, token: "wrong", devMode: false, enableTelemetry: false });
    await expect(wrong.publishJSON({ url: `${dest.url}/nope`, body: {} })).rejects.toThrow(/Unauthorized/);
    const unknown = await fetch(`${qstash.url}/v2/nothing`, { headers: { authorization: `Bearer ${token}` } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: expect.any(String) });
    expect(dest.at("/nope")).toEqual([]);
  });
});

describe("QStash stand-in, pull delivery", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "qstash-"));
  const target = "http://worker.test";
  let qstash: QStashStandIn;
  let client: Client;

  const pull = async (standIn: QStashStandIn, waitMs = 3_000): Promise<Delivery | null> =>
    ((await (await control(standIn, `pull?waitMs=${waitMs}`)).json()) as { delivery: Delivery | null }).delivery;
  const report = (standIn: QStashStandIn, id: string, status: number, body = "") =>
    control(standIn, "report", { body: JSON.stringify({ id, status, headers: { "x-answer": "yes" }, body: Buffer.from(body).toString("base64") }) });
  const start = () => startQStashStandIn({ port: 0, token, ...keys, dataDir, retryDelayScale: 0.001, delivery: "pull", log: quiet });

  beforeAll(async () => {
    qstash = await start();
    client = new Client({ baseUrl: qstash.url, token, devMode: false, enableTelemetry: false });
  });
  afterAll(async () => {
    await qstash.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("hands out deliveries to a long poll and acts on the reports", async () => {
    const waiting = pull(qstash);
    const { messageId } = await client.publishJSON({ url: `${target}/jobs/ocr`, body: { page: 1 } });
    const first = (await waiting)!;
    expect(first).toMatchObject({ messageId, url: `${target}/jobs/ocr`, method: "POST" });
    expect(first.headers).toMatchObject({ "Upstash-Message-Id": messageId, "Upstash-Retried": "0", "Content-Type": "application/json" });
    expect(fromBase64(first.body)).toBe('{"page":1}');
    await expect(verify(first.headers["Upstash-Signature"], fromBase64(first.body), first.url)).resolves.toBe(true);

    expect((await report(qstash, first.id, 500)).status).toBe(200);
    const second = (await pull(qstash))!;
    expect(second).toMatchObject({ messageId, headers: expect.objectContaining({ "Upstash-Retried": "1" }) });
    await report(qstash, second.id, 200);
    expect(qstash.messages().find((m) => m.messageId === messageId)).toMatchObject({ state: "delivered", attempts: 2 });
    expect((await report(qstash, second.id, 200)).status).toBe(404);
    expect(await pull(qstash, 50)).toBeNull();
  });

  it("sends the failure callback through pull too, and fails a delivery nobody reports in time", async () => {
    const { messageId } = await client.publishJSON({ url: `${target}/jobs/ocr`, body: { page: 2 }, retries: 0, failureCallback: `${target}/jobs/failed` });
    const delivery = (await pull(qstash))!;
    await report(qstash, delivery.id, 503, "busy");
    const callback = (await pull(qstash))!;
    expect(callback.url).toBe(`${target}/jobs/failed`);
    await expect(verify(callback.headers["Upstash-Signature"], fromBase64(callback.body), callback.url)).resolves.toBe(true);
    expect(JSON.parse(fromBase64(callback.body))).toMatchObject({ status: 503, header: { "x-answer": ["yes"] }, body: Buffer.from("busy").toString("base64"), retried: 0, sourceMessageId: messageId });
    await report(qstash, callback.id, 200);

    const { messageId: silent } = await client.publishJSON({ url: `${target}/jobs/slow`, body: {}, retries: 0, timeout: 1 });
    const unanswered = (await pull(qstash))!;
    expect(unanswered.messageId).toBe(silent);
    const message = await waitFor(() => qstash.messages().find((m) => m.messageId === silent && m.state === "failed"), 3_000);
    expect(message.lastStatus).toBe(0);
    expect((await report(qstash, unanswered.id, 200)).status).toBe(404);
  });

  it("resumes retries, deduplication and schedules after a restart", async () => {
    const { messageId } = await client.publishJSON({ url: `${target}/jobs/resume`, body: {}, deduplicationId: "resume-1" });
    const { scheduleId } = await client.schedules.create({ destination: `${target}/jobs/yearly`, cron: "0 0 1 1 *" });
    await report(qstash, (await pull(qstash))!.id, 500);
    await qstash.close();
    expect(readdirSync(dataDir)).toEqual(["state.json"]);

    qstash = await start();
    client = new Client({ baseUrl: qstash.url, token, devMode: false, enableTelemetry: false });
    const retry = (await pull(qstash))!;
    expect(retry).toMatchObject({ messageId, headers: expect.objectContaining({ "Upstash-Retried": "1" }) });
    await report(qstash, retry.id, 200);
    expect(await client.publishJSON({ url: `${target}/jobs/resume`, body: {}, deduplicationId: "resume-1" })).toMatchObject({ messageId, deduplicated: true });
    expect((await client.schedules.list()).map((s) => s.scheduleId)).toEqual([scheduleId]);

    expect((await control(qstash, "reset")).status).toBe(200);
    expect(qstash.messages()).toEqual([]);
    expect(await client.schedules.list()).toEqual([]);
    expect(existsSync(join(dataDir, "state.json"))).toBe(true);
  });
});
