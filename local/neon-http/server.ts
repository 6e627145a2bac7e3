// A local stand-in for Neon's serverless HTTP SQL endpoint, backed by PGlite (Postgres in
// WASM) with pgvector. The unmodified `@neondatabase/serverless` driver and drizzle's
// neon-http session talk to it exactly as to Neon; only `neonConfig.fetchEndpoint` differs.
// The same PGlite also serves the Postgres wire protocol for psql and drizzle-kit studio.
import { PGlite, protocol } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { mkdirSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { HttpError, listen, type Outage, outlastClientKeepAlive, readBody, sendJson, serverOutage } from "../http.ts";

export interface NeonStandIn {
  /** What the Worker sets as `neonConfig.fetchEndpoint`, e.g. http://127.0.0.1:5480/sql */
  endpoint: string;
  /** A connection string the driver accepts (and psql, when the wire server runs). */
  connectionString: string;
  wirePort: number | undefined;
  /** The HTTP endpoint down and up again, the database kept (the wire port stays up for psql). */
  outage: Outage;
  close(): Promise<void>;
}

export interface NeonStandInOptions {
  httpPort: number;
  wirePort?: number;
  /** undefined = in-memory database */
  dataDir?: string;
  host?: string;
  log?: (line: string) => void;
}

type Query = { query: string; params?: unknown[] };
type FieldOut = { name: string; dataTypeID: number; tableID: number; columnID: number; dataTypeSize: number; dataTypeModifier: number; format: string };
type ResultOut = { command: string; rowCount: number | null; fields: FieldOut[]; rows: Array<Array<string | null>>; rowAsArray: true };
type BackendMessage = { name: string } & Record<string, unknown>;

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const ERROR_FIELDS = [
  "severity", "code", "detail", "hint", "position", "internalPosition", "internalQuery", "where",
  "schema", "table", "column", "dataType", "constraint", "file", "line", "routine",
] as const;
const ISOLATION: Record<string, string> = {
  Serializable: "SERIALIZABLE",
  RepeatableRead: "REPEATABLE READ",
  ReadCommitted: "READ COMMITTED",
  ReadUncommitted: "READ UNCOMMITTED",
};

class SqlError extends Error {
  readonly fields: Record<string, unknown>;
  constructor(message: string, fields: Record<string, unknown>) {
    super(message);
    this.fields = fields;
  }
}

/** One statement through Parse/Bind/Describe/Execute/Sync: raw text values and true type OIDs. */
async function runStatement(db: PGlite, { query, params = [] }: Query): Promise<ResultOut> {
  if (typeof query !== "string") throw new HttpError(400, "query must be a string");
  if (!Array.isArray(params)) throw new HttpError(400, "params must be an array");
  const values = params.map((value) => (value === null || value === undefined ? null : String(value)));
  const message = concat([
    protocol.serialize.parse({ text: query, types: [] }),
    protocol.serialize.bind({ values }),
    protocol.serialize.describe({ type: "P" }),
    protocol.serialize.execute({}),
    protocol.serialize.sync(),
  ]);
  const { messages } = (await db.execProtocol(message, { throwOnError: false })) as unknown as {
    messages: BackendMessage[];
  };
  const result: ResultOut = { command: "", rowCount: null, fields: [], rows: [], rowAsArray: true };
  for (const msg of messages) {
    if (msg.name === "error") {
      const fields: Record<string, unknown> = {};
      for (const key of ERROR_FIELDS) if (msg[key] !== undefined) fields[key] = msg[key];
      throw new SqlError(String((msg as { message?: string }).message ?? "query failed"), fields);
    }
    if (msg.name === "rowDescription") {
      result.fields = (msg.fields as FieldOut[]).map((f) => ({
        name: f.name,
        dataTypeID: f.dataTypeID,
        tableID: f.tableID,
        columnID: f.columnID,
        dataTypeSize: f.dataTypeSize,
        dataTypeModifier: f.dataTypeModifier,
        format: "text",
      }));
    } else if (msg.name === "dataRow") {
      result.rows.push(msg.fields as Array<string | null>);
    } else if (msg.name === "commandComplete") {
      const text = String(msg.text);
      const [command = "", ...rest] = text.split(" ");
      const count = Number(rest.at(-1));
      result.command = command;
      result.rowCount = Number.isFinite(count) && rest.length > 0 ? count : null;
    }
  }
  return result;
}

async function runSimple(db: PGlite, sql: string): Promise<void> {
  const { messages } = (await db.execProtocol(protocol.serialize.query(sql), { throwOnError: false })) as unknown as {
    messages: BackendMessage[];
  };
  const error = messages.find((msg) => msg.name === "error");
  if (error) throw new SqlError(String((error as { message?: string }).message), {});
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function beginStatement(headers: IncomingMessage["headers"]): string {
  const level = headers["neon-batch-isolation-level"];
  const parts = ["BEGIN"];
  if (typeof level === "string") {
    const sqlLevel = ISOLATION[level];
    if (!sqlLevel) throw new HttpError(400, `unknown isolation level: ${level}`);
    parts.push(`ISOLATION LEVEL ${sqlLevel}`);
  }
  if (headers["neon-batch-read-only"] === "true") parts.push("READ ONLY");
  if (headers["neon-batch-deferrable"] === "true") parts.push("DEFERRABLE");
  return parts.join(" ");
}

async function handle(db: PGlite, req: IncomingMessage): Promise<unknown> {
  if (req.method !== "POST") throw new HttpError(405, "only POST is supported");
  if (new URL(req.url ?? "/", "http://x").pathname !== "/sql") throw new HttpError(404, "not found");
  let payload: { query?: string; params?: unknown[]; queries?: Query[] };
  try {
    payload = JSON.parse(await readBody(req, MAX_BODY_BYTES, "request body too large")) as typeof payload;
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, "request body is not valid JSON");
  }
  if (payload === null || typeof payload !== "object") throw new HttpError(400, "request body must be an object");

  // PGlite is a single session shared with the wire server: each request holds it exclusively.
  return db.runExclusive(async () => {
    // After a wire client disconnects (Terminate), PGlite swallows the output of the next
    // message it runs. A bare Sync is harmless either way and absorbs that, so the
    // statements below always get their replies.
    await db.execProtocol(protocol.serialize.sync(), { throwOnError: false });
    try {
      if (Array.isArray(payload.queries)) {
        await runSimple(db, beginStatement(req.headers));
        const results: ResultOut[] = [];
        for (const query of payload.queries) results.push(await runStatement(db, query));
        await runSimple(db, "COMMIT");
        return { results };
      }
      return await runStatement(db, { query: payload.query as string, params: payload.params ?? [] });
    } finally {
      // A failed batch, or a lone BEGIN sent as a query, must not leak into the next request.
      if (db.isInTransaction()) await runSimple(db, "ROLLBACK").catch(() => {});
    }
  });
}

export async function startNeonStandIn(opts: NeonStandInOptions): Promise<NeonStandIn> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => {});
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  let db: PGlite;
  try {
    db = await PGlite.create({ dataDir: opts.dataDir, extensions: { vector } });
  } catch (error) {
    throw new Error(
      `PGlite could not open ${opts.dataDir ?? "an in-memory database"} (is another process using it?): ${String(error)}`,
    );
  }

  const http = createServer((req, res) => {
    handle(db, req).then(
      (body) => sendJson(res, 200, body),
      (error: unknown) => {
        if (error instanceof SqlError) return sendJson(res, 400, { message: error.message, ...error.fields });
        if (error instanceof HttpError) return sendJson(res, error.status, { message: error.message });
        log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
        sendJson(res, 500, { message: "internal error" });
      },
    );
  });
  // Under a burst PGlite holds this event loop for seconds; with a 1 s idle timeout, 200
  // concurrent generation starts lost up to 26 requests.
  outlastClientKeepAlive(http);

  let wire: PGLiteSocketServer | undefined;
  let wirePort: number | undefined;
  try {
    const httpPort = await listen(http, opts.httpPort, host, "neon-http");
    if (opts.wirePort !== undefined) {
      wire = new PGLiteSocketServer({ db, port: opts.wirePort, host, maxConnections: 16 });
      try {
        await wire.start();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new Error(
          code === "EADDRINUSE" ? `port ${opts.wirePort} (postgres wire protocol) is already in use` : String(error),
        );
      }
      wirePort = Number(wire.getServerConn().split(":").at(-1));
    }
    const endpoint = `http://${host}:${httpPort}/sql`;
    // The driver needs a well-formed URL; host/port only matter to psql, hence the wire port.
    const connectionString = `postgresql://postgres:postgres@${host}:${wirePort ?? httpPort}/postgres`;
    log(`ready (${opts.dataDir ? `data in ${opts.dataDir}` : "in-memory"})`);
    return {
      endpoint,
      connectionString,
      wirePort,
      outage: serverOutage(http, httpPort, host, "neon-http"),
      close: async () => {
        await wire?.stop();
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
        await db.close();
      },
    };
  } catch (error) {
    http.close();
    await wire?.stop().catch(() => {});
    await db.close();
    throw error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      "http-port": { type: "string", default: "5480" },
      "wire-port": { type: "string", default: "5433" },
      "data-dir": { type: "string" },
    },
  });
  const log = (line: string) => console.log(`[pg] ${line}`);
  startNeonStandIn({
    httpPort: Number(values["http-port"]),
    wirePort: Number(values["wire-port"]),
    dataDir: values["data-dir"],
    log,
  }).then(
    (standIn) => {
      log(`Neon HTTP endpoint ${standIn.endpoint}`);
      log(`connection string ${standIn.connectionString}`);
      const stop = () => void standIn.close().then(() => process.exit(0));
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    },
    (error: unknown) => {
      console.error(`[pg] ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
