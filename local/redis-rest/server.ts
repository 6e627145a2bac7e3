// Speaks the Upstash Redis REST protocol in front of a plain redis-server, so the unmodified
// `@upstash/redis` and `@upstash/ratelimit` SDKs run against it with only the URL changed.
//
// Protocol, as @upstash/redis 1.39 uses it (pkg/http.ts, pkg/pipeline.ts):
//   POST /            ["SET","k","v"]              → {"result": …} | 400 {"error": …}
//   POST /pipeline    [["SET","k","v"],["GET","k"]] → [{"result": …}, {"error": …}, …]
//   POST /multi-exec  same body, run atomically      → the same array, or 400 if Redis discarded it
// `Upstash-Encoding: base64` asks for every string of a result base64-encoded, except a bare
// top-level "OK": the SDK base64-decodes everything else it receives (and garbles what isn't).
// The SDK only uses path-style commands (/subscribe/…) for pub/sub, which this adapter refuses.
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createClient, ErrorReply, RESP_TYPES } from "redis";
import { HttpError, listen, type Outage, outlastClientKeepAlive, readBody, sendJson, serverOutage } from "../http.ts";
import { startRedisServer } from "./redis-server.ts";

export interface RedisRestAdapter {
  url: string;
  token: string;
  /** The REST endpoint down and up again (Redis itself untouched). */
  outage: Outage;
  close(): Promise<void>;
}

export interface RedisRestOptions {
  /** 0 = a free port */
  port: number;
  /** e.g. redis://127.0.0.1:6390 */
  redisUrl: string;
  /** Bearer token clients must send. */
  token: string;
  /** Default 127.0.0.1. Loopback is the point: the token is a development secret. */
  host?: string;
  /** Never receives command arguments or values: they may be secrets or user text. */
  log?: (line: string) => void;
}

type Reply = { result: unknown } | { error: string };
type Prepared = { args: string[]; scriptLoadSha?: string; refused?: string };

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const CONNECT_GRACE_MS = 3_000;
// Bulk strings as Buffers, so base64 is taken of Redis's bytes rather than of a UTF-8 guess.
// Status replies (+OK, +PONG) stay strings: that is how "OK" is told apart below.
const COMMAND_OPTIONS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

// Commands that hold a connection or change its state (protocol, database, reply mode) would
// break the shared connections every request runs on; Upstash refuses them over REST too.
const REFUSED = new Set([
  "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "monitor",
  "multi", "exec", "discard", "watch", "unwatch", "select", "swapdb", "hello", "auth", "reset",
  "quit", "shutdown", "sync", "psync", "replicaof", "slaveof", "failover",
]);
const REFUSED_CLIENT_SUBCOMMANDS = new Set(["reply", "tracking", "caching", "pause", "kill", "no-evict", "no-touch"]);
// Blocking commands would stall every request queued behind them on the shared connection,
// so each gets a short-lived connection of its own.
const BLOCKING = new Set(["blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "wait", "waitaof"]);
// Script flags Redis 7.0 accepts; newer SDK scripts add ones it rejects.
const KNOWN_SCRIPT_FLAGS = new Set(["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"]);

const sha1 = (text: string) => createHash("sha1").update(text, "utf8").digest("hex");

function isBlocking(args: string[]): boolean {
  const name = args[0]!.toLowerCase();
  if (BLOCKING.has(name)) return true;
  return (name === "xread" || name === "xreadgroup") && args.some((arg) => arg.toLowerCase() === "block");
}

function refusal(args: string[]): string | undefined {
  const name = args[0]!.toLowerCase();
  const refused = REFUSED.has(name) || (name === "client" && REFUSED_CLIENT_SUBCOMMANDS.has((args[1] ?? "").toLowerCase()));
  return refused ? `ERR command '${args[0]}' is not allowed over REST` : undefined;
}

/**
 * @upstash/ratelimit's scripts start with `#!lua flags=allow-key-locking`, a flag Redis 7.0
 * rejects ("Unexpected flag in script shebang"). We drop flags Redis does not know, leave the
 * rest of the script byte for byte, and remember original SHA → rewritten SHA so that EVALSHA,
 * SCRIPT LOAD and SCRIPT EXISTS keep speaking in the client's SHAs.
 */
function createScriptTranslator() {
  const rewrittenSha = new Map<string, string>();

  const rewrite = (script: string): string => {
    const end = script.indexOf("\n");
    const shebang = end === -1 ? script : script.slice(0, end);
    if (!shebang.startsWith("#!")) return script;
    const fixed = shebang.replace(/(\s+)flags=(\S*)/, (_whole, space: string, list: string) => {
      const kept = list.split(",").filter((flag) => KNOWN_SCRIPT_FLAGS.has(flag));
      return kept.length > 0 ? `${space}flags=${kept.join(",")}` : "";
    });
    if (fixed === shebang) return script;
    const rewritten = fixed + script.slice(shebang.length);
    rewrittenSha.set(sha1(script), sha1(rewritten));
    return rewritten;
  };
  const mapSha = (sha: string) => rewrittenSha.get(sha.toLowerCase()) ?? sha;

  return (args: string[]): Prepared => {
    const [name = "", first, ...rest] = args;
    const command = name.toLowerCase();
    const sub = (first ?? "").toLowerCase();
    if ((command === "eval" || command === "eval_ro") && first !== undefined) {
      return { args: [name, rewrite(first), ...rest] };
    }
    if ((command === "evalsha" || command === "evalsha_ro") && first !== undefined) {
      return { args: [name, mapSha(first), ...rest] };
    }
    if (command === "script" && sub === "load" && rest[0] !== undefined) {
      // Redis would answer the rewritten script's SHA; the client expects its own.
      return { args: [name, first!, rewrite(rest[0])], scriptLoadSha: sha1(rest[0]) };
    }
    if (command === "script" && sub === "exists") {
      return { args: [name, first!, ...rest.map(mapSha)] };
    }
    return { args };
  };
}

/** Redis reply → JSON value; in base64 mode every string but a bare top-level "OK" is encoded. */
function encode(value: unknown, base64: boolean, topLevel = true): unknown {
  if (Buffer.isBuffer(value)) return value.toString(base64 ? "base64" : "utf8");
  if (typeof value === "string") {
    return base64 && !(topLevel && value === "OK") ? Buffer.from(value, "utf8").toString("base64") : value;
  }
  // An error nested in a script's array reply: Upstash shows its message as a string.
  if (value instanceof Error) return encode(value.message, base64, false);
  if (Array.isArray(value)) return value.map((item) => encode(item, base64, false));
  return value ?? null;
}

function encodeReply(reply: Reply, base64: boolean): Reply {
  return "result" in reply ? { result: encode(reply.result, base64) } : reply;
}

/** A command as Redis arguments; numbers and booleans become their text, as Upstash does. */
function toArgs(command: unknown): string[] {
  if (!Array.isArray(command) || command.length === 0) {
    throw new HttpError(400, "ERR a command must be a non-empty JSON array");
  }
  return command.map((part: unknown) => {
    if (typeof part === "string") return part;
    if (typeof part === "number" || typeof part === "boolean") return String(part);
    throw new HttpError(400, "ERR command arguments must be strings or numbers");
  });
}

function toCommandList(body: unknown): string[][] {
  if (!Array.isArray(body) || body.length === 0) throw new HttpError(400, "ERR body must be a non-empty array of commands");
  return body.map(toArgs);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) {
    throw new HttpError(413, "ERR request body too large");
  }
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

/** Anything but an error reply from Redis means the connection, not the command, failed. */
const connectionLost = () => new HttpError(503, "ERR redis is unavailable (is redis-server running?)");

export async function startRedisRestAdapter(opts: RedisRestOptions): Promise<RedisRestAdapter> {
  const host = opts.host ?? "127.0.0.1";
  if (host === "" || host === "0.0.0.0" || host === "::") {
    throw new Error(`redis-rest must listen on a loopback address, not ${host || "all interfaces"}`);
  }
  const log = opts.log ?? (() => {});
  const redisHost = new URL(opts.redisUrl).host;
  const socket = {
    connectTimeout: 2_000,
    // Short and bounded: a refused connect on loopback costs nothing, and the adapter is back
    // within a quarter second of Redis.
    reconnectStrategy: (retries: number) => Math.min(25 * 2 ** retries, 250),
  };
  // No offline queue: while Redis is down a command fails at once instead of waiting for it.
  const clientOptions = { url: opts.redisUrl, RESP: 2 as const, disableOfflineQueue: true, socket };
  const client = createClient(clientOptions);
  // MULTI/EXEC gets its own connection, one transaction at a time: nothing from another
  // request may land between MULTI and EXEC.
  const txClient = createClient(clientOptions);
  type Client = typeof client;

  // One line when Redis goes away and one when it is back, not one per reconnect attempt.
  let down = false;
  for (const c of [client, txClient]) {
    // Without an 'error' listener node-redis would crash the process on a lost connection.
    c.on("error", (error: Error) => {
      if (!down) log(`redis ${redisHost} unreachable (${error.message}); answering 503 until it is back`);
      down = true;
    });
    c.on("ready", () => {
      if (down && client.isReady && txClient.isReady) log(`redis ${redisHost}: connection restored`);
      if (client.isReady && txClient.isReady) down = false;
    });
  }

  const prepare = createScriptTranslator();
  const send = (via: Client, args: string[]) => via.sendCommand<unknown>(args, COMMAND_OPTIONS);

  /** Runs a blocking command on a connection of its own, dropped when the HTTP client leaves. */
  const sendIsolated = async (args: string[], signal: AbortSignal): Promise<unknown> => {
    const side = client.duplicate({ socket: { ...socket, reconnectStrategy: false } });
    side.on("error", () => {});
    const drop = () => side.destroy();
    signal.addEventListener("abort", drop, { once: true });
    try {
      await side.connect();
      return await send(side, args);
    } finally {
      signal.removeEventListener("abort", drop);
      if (side.isOpen) side.destroy();
    }
  };

  const run = async (command: Prepared, signal: AbortSignal): Promise<Reply> => {
    if (command.refused) return { error: command.refused };
    try {
      const result = isBlocking(command.args) ? await sendIsolated(command.args, signal) : await send(client, command.args);
      return { result: command.scriptLoadSha ?? result };
    } catch (error) {
      if (error instanceof ErrorReply) return { error: error.message };
      throw connectionLost();
    }
  };

  const prepareAll = (commands: string[][]): Prepared[] =>
    commands.map((args) => ({ ...prepare(args), refused: refusal(args) }));

  const runPipeline = async (commands: Prepared[], signal: AbortSignal): Promise<Reply[]> => {
    const replies: Array<Promise<Reply>> = [];
    for (const command of commands) {
      // Everything before a blocking command has run before it starts, and nothing after it
      // starts before it is done: the pipeline keeps its order across the two connections.
      if (isBlocking(command.args)) {
        await Promise.all(replies);
        replies.push(Promise.resolve(await run(command, signal)));
      } else {
        replies.push(run(command, signal));
      }
    }
    return Promise.all(replies);
  };

  let txQueue: Promise<unknown> = Promise.resolve();
  const runTransaction = (commands: Prepared[]): Promise<Reply[]> => {
    const transaction = async (): Promise<Reply[]> => {
      const refused = commands.find((command) => command.refused);
      if (refused?.refused) throw new HttpError(400, refused.refused);
      if (!txClient.isReady) throw connectionLost();
      // Sent back to back on one connection; Redis answers in order.
      const sent = [["MULTI"], ...commands.map((command) => command.args), ["EXEC"]].map((args) => send(txClient, args));
      const settled = await Promise.allSettled(sent);
      if (settled.some((s) => s.status === "rejected" && !(s.reason instanceof ErrorReply))) throw connectionLost();
      // A command Redis refused to queue makes it discard the whole transaction (EXECABORT);
      // like Upstash, answer with that command's own error.
      const queueError = settled.slice(1, -1).find((s) => s.status === "rejected");
      const exec = settled[settled.length - 1]!;
      const failed = queueError ?? (exec.status === "rejected" ? exec : undefined);
      if (failed?.status === "rejected") throw new HttpError(400, (failed.reason as Error).message);
      const results = exec.status === "fulfilled" ? exec.value : undefined;
      if (!Array.isArray(results)) throw new HttpError(400, "EXECABORT Transaction discarded");
      return results.map((result: unknown, i) =>
        result instanceof ErrorReply ? { error: result.message } : { result: commands[i]?.scriptLoadSha ?? result },
      );
    };
    const next = txQueue.then(transaction, transaction);
    txQueue = next.catch(() => {});
    return next;
  };

  const handle = async (req: IncomingMessage, signal: AbortSignal): Promise<{ status: number; body: Reply | Reply[] }> => {
    if (req.method !== "POST") throw new HttpError(405, "ERR only POST is supported");
    if (!authorized(req.headers.authorization, opts.token)) throw new HttpError(401, "Unauthorized");
    const path = new URL(req.url ?? "/", "http://adapter").pathname.replace(/\/+$/, "");
    if (path !== "" && path !== "/pipeline" && path !== "/multi-exec") {
      throw new HttpError(404, "ERR unknown path: send commands to /, /pipeline or /multi-exec");
    }
    const body = await readJson(req);
    if (path === "") {
      const [command] = prepareAll([toArgs(body)]);
      if (!client.isReady) throw connectionLost();
      const reply = await run(command!, signal);
      return { status: "error" in reply ? 400 : 200, body: reply };
    }
    const commands = prepareAll(toCommandList(body));
    if (path === "/multi-exec") return { status: 200, body: await runTransaction(commands) };
    if (!client.isReady) throw connectionLost();
    return { status: 200, body: await runPipeline(commands, signal) };
  };

  const respond = (req: IncomingMessage, res: ServerResponse) => {
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    handle(req, abort.signal).then(
      ({ status, body }) =>
        sendJson(res, status, Array.isArray(body) ? body.map((r) => encodeReply(r, base64)) : encodeReply(body, base64)),
      (error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        // Only our own messages are logged: Redis errors can quote command arguments.
        if (status === 500) log(`internal error: ${error instanceof Error ? error.name : "unknown"}`);
        const message = error instanceof HttpError ? error.message : "ERR internal error in the REST adapter";
        // A body we stopped reading cannot be drained politely; close the connection after answering.
        if (status === 413) res.setHeader("connection", "close");
        sendJson(res, status, { error: message });
      },
    );
  };

  const server = createServer(respond);
  outlastClientKeepAlive(server);
  const port = await listen(server, opts.port, host, "redis-rest");

  // Waits briefly for Redis, but never forever: a Redis that is down only means 503s until
  // the client's reconnect loop finds it.
  const connected = Promise.all([client.connect(), txClient.connect()]);
  let graceTimer: NodeJS.Timeout | undefined;
  await Promise.race([
    connected.catch(() => {}),
    new Promise<void>((done) => (graceTimer = setTimeout(done, CONNECT_GRACE_MS))),
  ]);
  clearTimeout(graceTimer);

  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    token: opts.token,
    outage: serverOutage(server, port, host, "redis-rest"),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      // destroy(), not close(): Redis may be gone, and close() would wait for it.
      for (const c of [client, txClient]) if (c.isOpen) c.destroy();
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
  let stopRedis = async () => {};
  try {
    const redis = await startRedisServer({
      port: redisPort,
      dataDir: values["data-dir"] ? resolve(values["data-dir"]) : undefined,
      log,
    });
    stopRedis = () => redis.stop();
    const adapter = await startRedisRestAdapter({
      port: Number(values.port),
      redisUrl: `redis://127.0.0.1:${redisPort}`,
      token: values.token,
      log,
    });
    log(`Upstash REST endpoint ${adapter.url} (token: ${values.token})`);
    const stop = () => void adapter.close().then(stopRedis).then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  } catch (error) {
    log(`failed to start: ${error instanceof Error ? error.message : String(error)}`);
    await stopRedis();
    process.exit(1);
  }
}
