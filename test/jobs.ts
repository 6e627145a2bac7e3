import { env, SELF } from "cloudflare:test";
import { SignJWT } from "jose";
import { afterAll, beforeAll } from "vitest";
import { fromBase64Url, toBase64, toBase64Url } from "../src/lib/encoding";
import { call } from "./helpers";

type Delivery = { id: string; messageId: string; url: string; method: string; headers: Record<string, string>; body: string };

function control(path: string, init: RequestInit = {}) {
  return fetch(`${env.TEST_QSTASH_URL}/__control/${path}`, {
    ...init,
    headers: { authorization: `Bearer ${env.QSTASH_TOKEN}`, "content-type": "application/json", ...init.headers },
  });
}

/**
 * QStash delivery for the Worker under test. It has no listening port inside the test pool, so
 * the local QStash runs in pull mode and this pump carries each due delivery — signed by the
 * stand-in, unchanged — to the Worker, and reports the answer back (which drives retries and
 * failure callbacks exactly as a real delivery would). Deliveries run concurrently.
 */
export function startJobPump() {
  let running = true;
  const inFlight = new Set<Promise<void>>();
  /** Every answered delivery, in order: what the Worker said to QStash. */
  const answered: Array<{ messageId: string; url: string; status: number; body: string }> = [];
  const forward = async (delivery: Delivery) => {
    let status = 0;
    let bytes = new Uint8Array();
    try {
      const response = await SELF.fetch(delivery.url, {
        method: delivery.method,
        headers: delivery.headers,
        body: delivery.method === "GET" ? undefined : fromBase64Url(delivery.body),
      });
      status = response.status;
      bytes = new Uint8Array(await response.arrayBuffer());
    } finally {
      answered.push({ messageId: delivery.messageId, url: delivery.url, status, body: new TextDecoder().decode(bytes) });
      await control("report", { method: "POST", body: JSON.stringify({ id: delivery.id, status, body: toBase64(bytes) }) });
    }
  };
  const loop = (async () => {
    while (running) {
      const response = await control("pull?waitMs=100", { method: "POST" }).catch(() => undefined);
      if (!response?.ok) continue;
      const { delivery } = (await response.json()) as { delivery: Delivery | null };
      if (!delivery) continue;
      const task = forward(delivery).catch(() => {});
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
    }
  })();
  return {
    answered,
    async stop() {
      running = false;
      await loop;
      await Promise.all(inFlight);
    },
  };
}

/** Runs a job pump for the enclosing test file (or describe block); read its answers through the result. */
export function useJobPump() {
  let pump: ReturnType<typeof startJobPump> | undefined;
  beforeAll(() => {
    pump = startJobPump();
  });
  afterAll(() => pump?.stop());
  return {
    get answered() {
      if (!pump) throw new Error("the job pump runs only inside the describe block");
      return pump.answered;
    },
  };
}

/** A message as the local QStash holds it (see local/qstash/queue.ts); `body` is base64. */
export type QStashMessage = {
  messageId: string;
  url: string;
  body: string;
  kind: "message" | "callback" | "failure-callback";
  sourceMessageId?: string;
  createdAt: number;
  state: string;
  attempts: number;
  lastStatus?: number;
};

export async function qstashMessages(): Promise<QStashMessage[]> {
  const response = await control("messages");
  const body = (await response.json()) as { messages: QStashMessage[] } | QStashMessage[];
  return Array.isArray(body) ? body : body.messages;
}

/** Delivers a message once more, as QStash's at-least-once delivery may. */
export async function redeliver(messageId: string): Promise<void> {
  const response = await control(`redeliver/${messageId}`, { method: "POST" });
  if (!response.ok) throw new Error(`redeliver failed: ${response.status} ${await response.text()}`);
}

export async function resetQStash(): Promise<void> {
  await control("reset", { method: "POST" });
}

/** Polls `check` until it returns something truthy (or throws after `timeoutMs`). */
export async function eventually<T>(check: () => Promise<T | undefined | false | null>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const encoder = new TextEncoder();

/** A delivery signed the way QStash signs (HS256; sub = URL; body = base64url SHA-256 of the body). */
export async function signed(options: { url: string; body: string; key?: string; nowSeconds?: number; lifetimeSeconds?: number; issuer?: string }) {
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const hash = toBase64Url(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(options.body))));
  return new SignJWT({ body: hash })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(options.issuer ?? "Upstash")
    .setSubject(options.url)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + (options.lifetimeSeconds ?? 300))
    .setJti(crypto.randomUUID())
    .sign(encoder.encode(options.key ?? env.QSTASH_CURRENT_SIGNING_KEY!));
}

/**
 * The body of the failure callback QStash posts to `/jobs/failed` once it gave up on a message
 * (the shape local/qstash/queue.ts writes): the last answer's status, the retries made, and the
 * source message — its id, URL and body (base64).
 */
export function failureCallback(source: { messageId: string; url: string; body: string }, last: { status: number; retried: number } = { status: 500, retried: 1 }) {
  return {
    status: last.status,
    header: {},
    body: btoa("{}"),
    retried: last.retried,
    maxRetries: last.retried,
    sourceMessageId: source.messageId,
    url: source.url,
    method: "POST",
    sourceHeader: { "Content-Type": ["application/json"] },
    sourceBody: source.body,
    createdAt: Date.now(),
    scheduleId: "",
  };
}

/** The failure callback about a delivery of job `name` with `payload` (see `failureCallback`). */
export function jobFailureCallback(name: string, payload: unknown, last?: { status: number; retried: number }, sourceMessageId = `msg_${crypto.randomUUID()}`) {
  return failureCallback({ messageId: sourceMessageId, url: `${env.PUBLIC_BASE_URL}/jobs/${name}`, body: btoa(JSON.stringify(payload)) }, last);
}

/**
 * POSTs a job delivery straight to the Worker, as QStash would (no queue in between), through
 * `send` (SELF unless a test that sends hundreds hands in another way to reach the Worker).
 */
export function deliver(path: string, body: string, signature: string | undefined, messageId = `msg_${crypto.randomUUID()}`, retried = 0, send: typeof call = call) {
  const headers: Record<string, string> = { "Content-Type": "application/json", "Upstash-Message-Id": messageId, "Upstash-Retried": String(retried) };
  if (signature) headers["Upstash-Signature"] = signature;
  return send(path, { method: "POST", headers, body });
}

/** A correctly signed delivery of `body` to `/jobs/<name>`. */
export async function deliverJob(name: string, body: unknown, options: { messageId?: string; retried?: number } = {}) {
  const url = `${env.PUBLIC_BASE_URL}/jobs/${name}`;
  const text = JSON.stringify(body);
  return deliver(`/jobs/${name}`, text, await signed({ url, body: text }), options.messageId, options.retried);
}
