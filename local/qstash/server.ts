// A local QStash: the unmodified `@upstash/qstash` Client publishes to it (baseUrl changed,
// devMode off) and its deliveries carry signatures the real Receiver accepts.
//
// Wire format, as @upstash/qstash 2.12 uses it (every request with `Authorization: Bearer`):
//   POST   /v2/publish/<destination, raw>   Upstash-* headers, raw body → {messageId, url, deduplicated?}
//   POST   /v2/batch                        [{destination, headers, body}] → [{messageId, url, deduplicated?}]
//   POST   /v2/schedules/<destination>      Upstash-Cron, Upstash-Schedule-Id? → {scheduleId}
//   GET    /v2/schedules[/<id>]; DELETE /v2/schedules/<id>
// Errors answer {"error": "..."}. Control endpoints for dev and tests live under /__control/.
// URL groups, queues, the DLQ API and flow control are not implemented.
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { HttpError, listen, type Outage, outlastClientKeepAlive, readBody, sendJson, serverOutage } from "../http.ts";
import { asLists, createQueue, type Message, type MessageTemplate, type Schedule } from "./queue.ts";
import { compileRetryDelay } from "./retry.ts";
import { fetchTransport, holdableTransport, type Outcome, pullTransport } from "./transport.ts";

export type { Message } from "./queue.ts";
export type { Delivery } from "./transport.ts";

export interface QStashStandInOptions {
  /** 0 = a free port */
  port: number;
  /** Bearer token every request must carry (QSTASH_TOKEN). */
  token: string;
  /** Signs every delivery, as QStash does. */
  currentSigningKey: string;
  /** Not used to sign (QStash signs with the current key); taken so one key pair configures both sides. */
  nextSigningKey: string;
  /** Where state.json lives; in memory only without it. */
  dataDir?: string;
  /** Multiplies retry waits (backoff and Upstash-Retry-Delay): 0.001 turns QStash's 12 s, 2.5 min, 30 min into 12, 148, 1808 ms. Default 1. */
  retryDelayScale?: number;
  /** "fetch" (default): send deliveries; "pull": hand them out on /__control/pull. */
  delivery?: "fetch" | "pull";
  /** Never receives bodies or signatures. */
  log: (line: string) => void;
}

export interface QStashStandIn {
  url: string;
  /** Every message with its state, oldest first (what GET /__control/messages answers). */
  messages(): Message[];
  /** The API down (publishing refused) and deliveries held, then both back with the queue as it was. */
  outage: Outage;
  close(): Promise<void>;
}

type HeaderMap = Record<string, string>;

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const DEFAULT_RETRIES = 3;
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_PULL_WAIT_MS = 60_000;
const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `10s`, `2m`, `1h30m`, or a bare number of seconds, in milliseconds. */
function duration(value: string, header: string): number {
  if (/^\d+$/.test(value)) return Number(value) * 1_000;
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map(([part]) => part).join("") !== value) {
    throw new HttpError(400, `invalid ${header}: ${value}`);
  }
  return parts.reduce((sum, [, amount, unit]) => sum + Number(amount) * UNITS[unit!]!, 0);
}

function httpUrl(value: string, what: string): string {
  if (/^https?:\/\//i.test(value) && URL.canParse(value)) return value;
  throw new HttpError(400, `${what} must be an http(s) URL (URL groups and APIs are not available locally): ${value}`);
}

function lowerCased(headers: Record<string, string | string[] | undefined>): HeaderMap {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name.toLowerCase(), Array.isArray(value) ? value.join(", ") : (value ?? "")]),
  );
}

/** The message an Upstash-* header set describes. */
function template(destination: string, headers: HeaderMap, body: string): MessageTemplate {
  const header: HeaderMap = {};
  if (headers["content-type"]) header["Content-Type"] = headers["content-type"];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith("upstash-forward-")) header[name.slice("upstash-forward-".length)] = value;
  }
  const retries = headers["upstash-retries"] ?? String(DEFAULT_RETRIES);
  if (!/^\d+$/.test(retries)) throw new HttpError(400, `invalid Upstash-Retries: ${retries}`);
  const retryDelay = headers["upstash-retry-delay"] || undefined;
  if (retryDelay) {
    try {
      compileRetryDelay(retryDelay);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }
  }
  const { "upstash-callback": callback, "upstash-failure-callback": failureCallback } = headers;
  return {
    url: httpUrl(destination, "destination"),
    method: (headers["upstash-method"] || "POST").toUpperCase(),
    header,
    body: Buffer.from(body, "utf8").toString("base64"),
    maxRetries: Number(retries),
    retryDelay,
    timeoutMs: headers["upstash-timeout"] ? duration(headers["upstash-timeout"], "Upstash-Timeout") : DEFAULT_TIMEOUT_MS,
    callback: callback ? httpUrl(callback, "Upstash-Callback") : undefined,
    failureCallback: failureCallback ? httpUrl(failureCallback, "Upstash-Failure-Callback") : undefined,
  };
}

/** Upstash-Not-Before (unix seconds) wins over Upstash-Delay, as in QStash. */
function dueAt(headers: HeaderMap, now: number): number {
  const notBefore = headers["upstash-not-before"];
  if (notBefore !== undefined) {
    if (!/^\d+$/.test(notBefore)) throw new HttpError(400, `invalid Upstash-Not-Before: ${notBefore}`);
    return Math.max(now, Number(notBefore) * 1_000);
  }
  return now + (headers["upstash-delay"] ? duration(headers["upstash-delay"], "Upstash-Delay") : 0);
}

/** The explicit deduplication id, or with content-based deduplication a hash of what would be delivered. */
function deduplicationId(headers: HeaderMap, message: MessageTemplate): string | undefined {
  if (headers["upstash-deduplication-id"]) return headers["upstash-deduplication-id"];
  if (headers["upstash-content-based-deduplication"] !== "true") return undefined;
  const { url, method, header, body } = message;
  return `content:${createHash("sha256").update(JSON.stringify([url, method, header, body])).digest("hex")}`;
}

/** The shape the SDK's `schedules.get` / `list` return. */
function scheduleView({ template: t, ...schedule }: Schedule) {
  return {
    scheduleId: schedule.scheduleId,
    cron: schedule.cron,
    createdAt: schedule.createdAt,
    destination: t.url,
    method: t.method,
    header: asLists(t.header),
    body: Buffer.from(t.body, "base64").toString("utf8"),
    retries: t.maxRetries,
    delay: Math.round(schedule.delayMs / 1_000),
    callback: t.callback,
    failureCallback: t.failureCallback,
    retryDelayExpression: t.retryDelay,
    isPaused: false,
    lastScheduleTime: schedule.lastScheduleTime,
    nextScheduleTime: schedule.nextScheduleTime,
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse(await readBody(req, MAX_BODY_BYTES, "request body too large"));
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, "request body is not valid JSON");
  }
}

/** A report's answer; headers may come as single values or lists. */
function reportedOutcome(body: unknown): { id: string; outcome: Outcome } {
  const { id, status, headers = {}, body: answer = "" } = (body ?? {}) as Record<string, unknown>;
  if (typeof id !== "string" || typeof status !== "number" || typeof answer !== "string" || typeof headers !== "object" || headers === null) {
    throw new HttpError(400, "a report is {id, status, headers?, body? (base64)}");
  }
  const lists = Object.entries(headers).map(([name, value]) => [name.toLowerCase(), Array.isArray(value) ? value.map(String) : [String(value)]]);
  return { id, outcome: { status, headers: Object.fromEntries(lists), body: answer } };
}

function authorized(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header ?? "");
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startQStashStandIn(opts: QStashStandInOptions): Promise<QStashStandIn> {
  if (!opts.token || !opts.currentSigningKey || !opts.nextSigningKey) {
    throw new Error("qstash: token, currentSigningKey and nextSigningKey must not be empty");
  }
  const { log } = opts;
  const pull = opts.delivery === "pull" ? pullTransport() : undefined;
  const deliveries = holdableTransport(pull ?? fetchTransport());
  const queue = createQueue({
    signingKey: opts.currentSigningKey,
    transport: deliveries.transport,
    retryDelayScale: opts.retryDelayScale ?? 1,
    dataDir: opts.dataDir,
    log,
  });

  const publish = (destination: string, headers: HeaderMap, body: string) => {
    const message = template(destination, headers, body);
    const { messageId, deduplicated } = queue.publish(message, {
      dueAt: dueAt(headers, Date.now()),
      deduplicationId: deduplicationId(headers, message),
    });
    return { messageId, url: message.url, ...(deduplicated && { deduplicated }) };
  };

  const v2 = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const headers = lowerCased(req.headers);
    const rawPath = req.url ?? "";
    // The destination is appended raw, query included: take it from the unparsed request line.
    if (req.method === "POST" && rawPath.startsWith("/v2/publish/")) {
      const body = await readBody(req, MAX_BODY_BYTES, "message too large");
      return sendJson(res, 200, publish(rawPath.slice("/v2/publish/".length), headers, body));
    }
    if (req.method === "POST" && path === "/v2/batch") {
      const batch = await readJson(req);
      if (!Array.isArray(batch)) throw new HttpError(400, "a batch is an array of {destination, headers, body}");
      const entries = batch.map((entry: { destination?: unknown; headers?: Record<string, string>; body?: unknown }) => {
        if (typeof entry?.destination !== "string") throw new HttpError(400, "every batch entry needs a destination");
        return { destination: entry.destination, headers: lowerCased(entry.headers ?? {}), body: typeof entry.body === "string" ? entry.body : "" };
      });
      return sendJson(res, 200, entries.map((entry) => publish(entry.destination, entry.headers, entry.body)));
    }
    if (req.method === "POST" && rawPath.startsWith("/v2/schedules/")) {
      const body = await readBody(req, MAX_BODY_BYTES, "schedule body too large");
      const cron = headers["upstash-cron"];
      if (!cron) throw new HttpError(400, "Upstash-Cron is required");
      const message = template(rawPath.slice("/v2/schedules/".length), headers, body);
      const delayMs = headers["upstash-delay"] ? duration(headers["upstash-delay"], "Upstash-Delay") : 0;
      try {
        const scheduleId = queue.putSchedule({ scheduleId: headers["upstash-schedule-id"] || undefined, cron, template: message, delayMs });
        return sendJson(res, 200, { scheduleId });
      } catch (error) {
        throw new HttpError(400, `invalid cron expression: ${(error as Error).message}`);
      }
    }
    if (req.method === "GET" && path === "/v2/schedules") return sendJson(res, 200, queue.schedules().map(scheduleView));
    const scheduleId = /^\/v2\/schedules\/([^/]+)$/.exec(path)?.[1];
    if (scheduleId && req.method === "GET") {
      const schedule = queue.schedules().find((s) => s.scheduleId === decodeURIComponent(scheduleId));
      if (!schedule) throw new HttpError(404, "schedule not found");
      return sendJson(res, 200, scheduleView(schedule));
    }
    if (scheduleId && req.method === "DELETE") {
      if (!queue.deleteSchedule(decodeURIComponent(scheduleId))) throw new HttpError(404, "schedule not found");
      res.writeHead(200).end();
      return;
    }
    throw new HttpError(404, `not available locally: ${req.method} ${path}`);
  };

  const control = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const path = url.pathname;
    if (req.method === "GET" && path === "/__control/messages") return sendJson(res, 200, queue.messages());
    if (req.method === "POST" && path === "/__control/reset") {
      queue.reset();
      return sendJson(res, 200, { ok: true });
    }
    const redeliver = /^\/__control\/redeliver\/([^/]+)$/.exec(path)?.[1];
    if (req.method === "POST" && redeliver) {
      if (!queue.redeliver(decodeURIComponent(redeliver))) throw new HttpError(404, "message not found");
      return sendJson(res, 200, { ok: true });
    }
    if (req.method === "POST" && (path === "/__control/pull" || path === "/__control/report")) {
      if (!pull) throw new HttpError(409, "the stand-in delivers by fetch; start it with delivery: \"pull\"");
      if (path === "/__control/report") {
        const { id, outcome } = reportedOutcome(await readJson(req));
        if (!pull.report(id, outcome)) throw new HttpError(404, "unknown delivery (never pulled, already reported, or timed out)");
        return sendJson(res, 200, { ok: true });
      }
      const waitMs = Math.min(Math.max(Number(url.searchParams.get("waitMs")) || 0, 0), MAX_PULL_WAIT_MS);
      const gone = new AbortController();
      res.once("close", () => gone.abort());
      return sendJson(res, 200, { delivery: await pull.pull(waitMs, gone.signal) });
    }
    throw new HttpError(404, `unknown control path: ${req.method} ${path}`);
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!authorized(req.headers.authorization, opts.token)) throw new HttpError(401, "Unauthorized");
    const url = new URL(req.url ?? "/", "http://qstash");
    if (url.pathname.startsWith("/__control/")) return control(req, res, url);
    if (url.pathname.startsWith("/v2/")) return v2(req, res, url.pathname);
    throw new HttpError(404, `unknown path: ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      if (status === 500) log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
      // A body we stopped reading cannot be drained politely; close the connection after answering.
      if (status === 413) res.setHeader("connection", "close");
      if (!res.headersSent) sendJson(res, status, { error: status === 500 ? "internal error" : (error as Error).message });
    });
  });
  outlastClientKeepAlive(server);
  const port = await listen(server, opts.port, "127.0.0.1", "qstash");
  const url = `http://127.0.0.1:${port}`;
  const api = serverOutage(server, port, "127.0.0.1", "qstash");
  log(`QStash on ${url} (${opts.delivery ?? "fetch"} delivery${opts.dataDir ? `, state in ${opts.dataDir}` : ", in memory"})`);

  return {
    url,
    messages: queue.messages,
    outage: {
      stop: async () => {
        deliveries.hold();
        await api.stop();
      },
      start: async () => {
        await api.start();
        deliveries.release();
      },
    },
    close: async () => {
      queue.close();
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Defaults match local/dev-vars.ts.
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8080" },
      token: { type: "string", default: "local-qstash-token" },
      "current-signing-key": { type: "string", default: "local-current-signing-key" },
      "next-signing-key": { type: "string", default: "local-next-signing-key" },
      "data-dir": { type: "string" },
      "retry-delay-scale": { type: "string", default: "1" },
    },
  });
  const log = (line: string) => console.log(`[qstash] ${line}`);
  const standIn = await startQStashStandIn({
    port: Number(values.port),
    token: values.token,
    currentSigningKey: values["current-signing-key"],
    nextSigningKey: values["next-signing-key"],
    dataDir: values["data-dir"],
    retryDelayScale: Number(values["retry-delay-scale"]),
    log,
  });
  const stop = () => void standIn.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
