// Speaks the Upstash Redis REST protocol in front of a plain redis-server, so the unmodified
// `@upstash/redis` and `@upstash/ratelimit` SDKs run against it with only the URL changed.
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { createClient } from "redis";
import { HttpError, listen, readBody, sendJson } from "../http.ts";
import { startRedisServer } from "./redis-server.ts";

export interface RedisRestAdapter {
  url: string;
  token: string;
  close(): Promise<void>;
}

export interface RedisRestOptions {
  port: number;
  redisUrl: string;
  token: string;
  host?: string;
  log?: (line: string) => void;
}

type Command = Array<string | number | boolean | null>;
type Reply = { result: unknown } | { error: string };

const MAX_BODY_BYTES = 10 * 1024 * 1024;
// Commands that hold a connection or change its state; Upstash refuses them over REST too.
const REFUSED = new Set(["subscribe", "psubscribe", "ssubscribe", "monitor", "multi", "exec", "discard", "watch", "unwatch", "shutdown", "quit", "select", "sync", "psync"]);

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

/**
 * @upstash/ratelimit's scripts declare `#!lua flags=allow-key-locking`, a flag Redis 7.0
 * rejects. We drop that flag and remember which original SHA maps to the rewritten script,
 * so EVALSHA / SCRIPT LOAD / SCRIPT EXISTS keep answering in terms of the client's SHA.
 */
function createScriptRewriter() {
  const shaMap = new Map<string, string>();
  const rewrite = (script: string): string => {
    const match = /^#!lua([^\n]*)/.exec(script);
    if (!match) return script;
    const flags = /flags=([^\s]*)/.exec(match[1] ?? "");
    if (!flags) return script;
    const kept = (flags[1] ?? "").split(",").filter((flag) => flag && flag !== "allow-key-locking");
    const header = kept.length > 0 ? `#!lua flags=${kept.join(",")}` : "#!lua";
    const rewritten = header + script.slice(match[0].length);
    if (rewritten !== script) shaMap.set(sha1(script), sha1(rewritten));
    return rewritten;
  };
  const translate = (command: string[]): { command: string[]; scriptLoadSha?: string } => {
    const name = (command[0] ?? "").toLowerCase();
    const sub = (command[1] ?? "").toLowerCase();
    if ((name === "eval" || name === "eval_ro") && command[1] !== undefined) {
      return { command: [command[0]!, rewrite(command[1]), ...command.slice(2)] };
    }
    if ((name === "evalsha" || name === "evalsha_ro") && command[1] !== undefined) {
      const mapped = shaMap.get(command[1].toLowerCase()) ?? command[1];
      return { command: [command[0]!, mapped, ...command.slice(2)] };
    }
    if (name === "script" && sub === "load" && command[2] !== undefined) {
      return { command: [command[0]!, command[1]!, rewrite(command[2])], scriptLoadSha: sha1(command[2]) };
    }
    if (name === "script" && sub === "exists") {
      return {
        command: [command[0]!, command[1]!, ...command.slice(2).map((sha) => shaMap.get(sha.toLowerCase()) ?? sha)],
      };
    }
    return { command };
  };
  return { translate };
}

/** Every string in the reply base64-encoded, recursively — except a bare top-level "OK". */
function encodeReply(value: unknown, topLevel = true): unknown {
  if (typeof value === "string") return topLevel && value === "OK" ? value : Buffer.from(value, "utf8").toString("base64");
  if (Buffer.isBuffer(value)) return value.toString("base64");
  if (Array.isArray(value)) return value.map((item) => encodeReply(item, false));
  return value;
}

function toArgs(command: unknown): string[] {
  if (!Array.isArray(command) || command.length === 0) throw new HttpError(400, "ERR command must be a non-empty array");
  return command.map((part) => {
    if (part === null || typeof part === "object") throw new HttpError(400, "ERR command arguments must be strings or numbers");
    return String(part);
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req, MAX_BODY_BYTES, "ERR request body too large");
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "ERR request body is not valid JSON");
  }
}

function authorized(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header ?? "");
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startRedisRestAdapter(opts: RedisRestOptions): Promise<RedisRestAdapter> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => {});
  const clientOptions = {
    url: opts.redisUrl,
    RESP: 2 as const,
    // Fail at once while Redis is down instead of queueing: callers get an error, not a hang.
    disableOfflineQueue: true,
    socket: { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1_000) },
  };
  const client = createClient(clientOptions);
  // MULTI/EXEC needs its own connection: commands from other requests must not land inside it.
  const txClient = createClient(clientOptions);
  let lastError = "";
  for (const c of [client, txClient]) {
    c.on("error", (error: Error) => {
      // One line per distinct failure, not one per reconnect attempt.
      if (error.message !== lastError) log(`redis connection: ${error.message}`);
      lastError = error.message;
    });
    c.on("ready", () => {
      if (lastError) log("redis connection restored");
      lastError = "";
    });
  }
  await Promise.all([client.connect(), txClient.connect()]);

  const scripts = createScriptRewriter();
  let txQueue: Promise<unknown> = Promise.resolve();

  const exec = async (command: unknown, via: typeof client = client): Promise<Reply> => {
    const args = toArgs(command);
    if (REFUSED.has(args[0]!.toLowerCase())) return { error: `ERR command ${args[0]} is not allowed over REST` };
    const { command: translated, scriptLoadSha } = scripts.translate(args);
    try {
      const result = await via.sendCommand(translated);
      return { result: scriptLoadSha ?? result };
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  };

  const unavailable = () => !client.isReady;

  const runMulti = async (commands: unknown[]): Promise<Reply[]> => {
    const run = async (): Promise<Reply[]> => {
      if (!txClient.isReady) throw new HttpError(503, "ERR redis is unavailable");
      const translated = commands.map((command) => scripts.translate(toArgs(command)));
      await txClient.sendCommand(["MULTI"]);
      try {
        for (const { command } of translated) await txClient.sendCommand(command);
      } catch (error) {
        await txClient.sendCommand(["DISCARD"]).catch(() => {});
        throw new HttpError(400, error instanceof Error ? error.message : String(error));
      }
      const results = (await txClient.sendCommand(["EXEC"])) as unknown[] | null;
      if (!Array.isArray(results)) throw new HttpError(400, "ERR transaction aborted");
      return results.map((result, i) =>
        result instanceof Error ? { error: result.message } : { result: translated[i]?.scriptLoadSha ?? result },
      );
    };
    const next = txQueue.then(run, run);
    txQueue = next.catch(() => {});
    return next;
  };

  const handle = async (req: IncomingMessage): Promise<{ status: number; body: unknown }> => {
    if (req.method !== "POST") throw new HttpError(405, "ERR only POST is supported");
    if (!authorized(req.headers.authorization, opts.token)) throw new HttpError(401, "Unauthorized");
    const path = new URL(req.url ?? "/", "http://x").pathname.replace(/\/+$/, "");
    const body = await readJson(req);
    if (unavailable()) throw new HttpError(503, "ERR redis is unavailable");

    if (path === "/pipeline" || path === "/multi-exec") {
      if (!Array.isArray(body) || body.length === 0) throw new HttpError(400, "ERR body must be an array of commands");
      const replies =
        path === "/pipeline" ? await Promise.all(body.map((command) => exec(command))) : await runMulti(body);
      if (replies.some((reply) => "error" in reply && /closed|offline|ECONNREFUSED/i.test(reply.error))) {
        throw new HttpError(503, "ERR redis is unavailable");
      }
      return { status: 200, body: replies };
    }
    if (path === "") {
      const reply = await exec(body);
      if ("error" in reply) {
        if (/closed|offline|ECONNREFUSED/i.test(reply.error)) throw new HttpError(503, "ERR redis is unavailable");
        return { status: 400, body: reply };
      }
      return { status: 200, body: reply };
    }
    throw new HttpError(404, "ERR unknown path");
  };

  const server = createServer((req, res) => {
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    handle(req).then(
      ({ status, body }) => {
        if (!base64) return sendJson(res, status, body);
        const encode = (reply: Reply) => ("result" in reply ? { result: encodeReply(reply.result) } : reply);
        sendJson(res, status, Array.isArray(body) ? (body as Reply[]).map(encode) : encode(body as Reply));
      },
      (error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (status === 500) log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
        sendJson(res, status, { error: error instanceof Error ? error.message : "ERR internal error" });
      },
    );
  });
  server.keepAliveTimeout = 1_000;

  const port = await listen(server, opts.port, host, "redis-rest").catch(async (error: unknown) => {
    await Promise.all([client.close(), txClient.close()]).catch(() => {});
    throw error;
  });

  return {
    url: `http://${host}:${port}`,
    token: opts.token,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // destroy(), not close(): Redis may already be gone and close() would wait on it.
      client.destroy();
      txClient.destroy();
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8079" },
      "redis-port": { type: "string", default: "6390" },
      token: { type: "string", default: "local-redis-token" },
      "data-dir": { type: "string" },
    },
  });
  const log = (line: string) => console.log(`[redis] ${line}`);
  const redisPort = Number(values["redis-port"]);
  const redis = await startRedisServer({
    port: redisPort,
    dataDir: values["data-dir"] ? join(process.cwd(), values["data-dir"]) : undefined,
    log,
  });
  const adapter = await startRedisRestAdapter({
    port: Number(values.port),
    redisUrl: `redis://127.0.0.1:${redisPort}`,
    token: values.token,
    log,
  });
  log(`Upstash REST endpoint ${adapter.url}`);
  const stop = () => void adapter.close().then(() => redis.stop()).then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
