// A local Expo push service: what the Worker's push client (src/modules/notifications/expo.ts)
// talks to in dev and in tests, answering as https://exp.host/--/api/v2/push does.
//
//   POST /--/api/v2/push/send         [message] or message (gzip or plain) → {data: [ticket]}
//   POST /--/api/v2/push/getReceipts  {ids} → {data: {id: receipt}}; unknown ids are left out
//
// Expo's request limits hold (100 messages, 1,000 ids: a 400 with `errors` beyond). Control
// endpoints for a person or a test:
//   GET  /__messages   every request received, in order ({requests, messages})
//   POST /__reset      forgets requests, tickets and faults
//   POST /__faults     {token, error, in: "ticket" | "receipt"}: that Expo error for that token
//                      from now on (error null clears it); or {status, path?: "send" | "getReceipts",
//                      retryAfter?}: the next request (to that path) answers that status, once.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { gunzipSync } from "node:zlib";
import { HttpError, listen, outlastClientKeepAlive, sendJson } from "../http.ts";

export const EXPO_PUSH_PATH = "/--/api/v2/push";
const MAX_MESSAGES = 100;
const MAX_RECEIPT_IDS = 1_000;
const MAX_BODY_BYTES = 5 * 1024 * 1024;

type ExpoPath = "send" | "getReceipts";
type Ticket = { status: "ok"; id: string } | { status: "error"; message: string; details: { error: string; expoPushToken: string } };
type Receipt = { status: "ok" } | { status: "error"; message: string; details: { error: string } };

export type RecordedRequest = {
  path: ExpoPath;
  /** Whether the body came gzipped (Content-Encoding: gzip). */
  gzip: boolean;
  authorization: string | null;
  /** What the stand-in answered. */
  status: number;
  /** send: the messages; getReceipts: the ids. */
  messages?: Array<Record<string, unknown>>;
  ids?: string[];
};

export type ExpoFault = { token: string; error: string | null; in: "ticket" | "receipt" };
export type StatusFault = { status: number; path?: ExpoPath; retryAfter?: number };

export interface ExpoStandIn {
  /** The base Expo push URL (EXPO_PUSH_URL), e.g. http://127.0.0.1:8060/--/api/v2/push */
  url: string;
  /** The origin, where /__messages, /__reset and /__faults live. */
  origin: string;
  requests(): RecordedRequest[];
  close(): Promise<void>;
}

async function readRaw(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage): Promise<{ body: unknown; gzip: boolean }> {
  const raw = await readRaw(req);
  const gzip = (req.headers["content-encoding"] ?? "").toLowerCase() === "gzip";
  let text: string;
  try {
    text = (gzip ? gunzipSync(raw) : raw).toString("utf8");
  } catch {
    throw new HttpError(400, "the body is not valid gzip");
  }
  try {
    return { body: JSON.parse(text), gzip };
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
}

/** Expo's request-level error shape. */
function expoError(status: number, code: string, message: string): HttpError & { expo: unknown } {
  return Object.assign(new HttpError(status, message), { expo: { errors: [{ code, message }] } });
}

export async function startExpoStandIn(opts: { port: number; log?: (line: string) => void }): Promise<ExpoStandIn> {
  const log = opts.log ?? (() => {});
  let requests: RecordedRequest[] = [];
  /** token → Expo error, per place it shows. */
  let faults = { ticket: new Map<string, string>(), receipt: new Map<string, string>() };
  let statusFaults: StatusFault[] = [];
  /** ticket id → the token it was sent to. */
  let tickets = new Map<string, string>();

  const takeStatusFault = (path: ExpoPath) => {
    const index = statusFaults.findIndex((fault) => fault.path === undefined || fault.path === path);
    return index === -1 ? undefined : statusFaults.splice(index, 1)[0];
  };

  const send = (messages: Array<Record<string, unknown>>): Ticket[] =>
    messages.map((message) => {
      const token = String(message.to);
      const error = faults.ticket.get(token);
      if (error) return { status: "error", message: `Expo answered ${error} for "${token}"`, details: { error, expoPushToken: token } };
      const id = randomUUID();
      tickets.set(id, token);
      return { status: "ok", id };
    });

  const receipts = (ids: string[]): Record<string, Receipt> => {
    const out: Record<string, Receipt> = {};
    for (const id of ids) {
      const token = tickets.get(id);
      if (token === undefined) continue;
      const error = faults.receipt.get(token);
      out[id] = error ? { status: "error", message: `Expo answered ${error} for "${token}"`, details: { error } } : { status: "ok" };
    }
    return out;
  };

  const push = async (req: IncomingMessage, res: ServerResponse, path: ExpoPath) => {
    const { body, gzip } = await readJson(req);
    const record: RecordedRequest = { path, gzip, authorization: req.headers.authorization ?? null, status: 200 };
    requests.push(record);
    if (path === "send") {
      // Expo takes one message or a list; a message's `to` may list several tokens.
      const list = (Array.isArray(body) ? body : [body]) as Array<Record<string, unknown>>;
      record.messages = list.flatMap((message) => (Array.isArray(message?.to) ? message.to.map((to: unknown) => ({ ...message, to })) : [message]));
    } else {
      const ids = (body as { ids?: unknown })?.ids;
      record.ids = Array.isArray(ids) ? ids.map(String) : [];
    }
    const fault = takeStatusFault(path);
    if (fault) {
      record.status = fault.status;
      if (fault.retryAfter !== undefined) res.setHeader("retry-after", String(fault.retryAfter));
      throw expoError(fault.status, fault.status === 429 ? "TOO_MANY_REQUESTS" : "INTERNAL_SERVER_ERROR", `programmed ${fault.status}`);
    }
    if (path === "send") {
      const messages = record.messages!;
      if (messages.some((message) => typeof message?.to !== "string")) {
        record.status = 400;
        throw expoError(400, "VALIDATION_ERROR", "every message needs a `to` token");
      }
      if (messages.length > MAX_MESSAGES) {
        record.status = 400;
        throw expoError(400, "PUSH_TOO_MANY_NOTIFICATIONS", `You are trying to send more than ${MAX_MESSAGES} push notifications in one request.`);
      }
      log(`send: ${messages.length} message(s)`);
      return sendJson(res, 200, { data: send(messages) });
    }
    if (!Array.isArray((body as { ids?: unknown })?.ids)) {
      record.status = 400;
      throw expoError(400, "VALIDATION_ERROR", "`ids` must be a list");
    }
    if (record.ids!.length > MAX_RECEIPT_IDS) {
      record.status = 400;
      throw expoError(400, "PUSH_TOO_MANY_RECEIPTS", `You are trying to get more than ${MAX_RECEIPT_IDS} push receipts in one request.`);
    }
    log(`getReceipts: ${record.ids!.length} id(s)`);
    return sendJson(res, 200, { data: receipts(record.ids!) });
  };

  const setFault = (body: unknown) => {
    const fault = (body ?? {}) as Record<string, unknown>;
    if (typeof fault.status === "number") {
      if (fault.status < 400 || fault.status > 599) throw new HttpError(400, "a status fault is 4xx or 5xx");
      if (fault.path !== undefined && fault.path !== "send" && fault.path !== "getReceipts") throw new HttpError(400, "path is send or getReceipts");
      if (fault.retryAfter !== undefined && typeof fault.retryAfter !== "number") throw new HttpError(400, "retryAfter is seconds");
      statusFaults.push({ status: fault.status, path: fault.path as ExpoPath | undefined, retryAfter: fault.retryAfter as number | undefined });
      return;
    }
    if (typeof fault.token !== "string" || (fault.in !== "ticket" && fault.in !== "receipt") || (fault.error !== null && typeof fault.error !== "string")) {
      throw new HttpError(400, 'a fault is {token, error, in: "ticket" | "receipt"} or {status, path?, retryAfter?}');
    }
    if (fault.error === null) faults[fault.in].delete(fault.token);
    else faults[fault.in].set(fault.token, fault.error);
  };

  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://expo").pathname;
    if (req.method === "POST" && path === `${EXPO_PUSH_PATH}/send`) return push(req, res, "send");
    if (req.method === "POST" && path === `${EXPO_PUSH_PATH}/getReceipts`) return push(req, res, "getReceipts");
    if (req.method === "GET" && path === "/__messages") {
      const messages = requests.filter((r) => r.path === "send" && r.status === 200).flatMap((r) => r.messages ?? []);
      return sendJson(res, 200, { requests, messages });
    }
    if (req.method === "POST" && path === "/__reset") {
      requests = [];
      faults = { ticket: new Map(), receipt: new Map() };
      statusFaults = [];
      tickets = new Map();
      return sendJson(res, 200, { ok: true });
    }
    if (req.method === "POST" && path === "/__faults") {
      setFault((await readJson(req)).body);
      return sendJson(res, 200, { ok: true });
    }
    throw new HttpError(404, `unknown path: ${req.method} ${path}`);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      if (status === 500) log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
      if (status === 413) res.setHeader("connection", "close");
      const expo = (error as { expo?: unknown }).expo;
      if (!res.headersSent) sendJson(res, status, expo ?? { error: status === 500 ? "internal error" : (error as Error).message });
    });
  });
  outlastClientKeepAlive(server);
  const port = await listen(server, opts.port, "127.0.0.1", "expo");
  const origin = `http://127.0.0.1:${port}`;
  log(`Expo push on ${origin}${EXPO_PUSH_PATH}; what it received: GET ${origin}/__messages`);
  return {
    url: `${origin}${EXPO_PUSH_PATH}`,
    origin,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}
