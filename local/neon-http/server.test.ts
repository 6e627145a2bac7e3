import { protocol } from "@electric-sql/pglite";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type NeonStandIn, startNeonStandIn } from "./server.ts";

const started: NeonStandIn[] = [];
async function start(options: Parameters<typeof startNeonStandIn>[0]) {
  const standIn = await startNeonStandIn(options);
  started.push(standIn);
  return standIn;
}
afterEach(async () => {
  for (const standIn of started.splice(0)) await standIn.close();
});

const post = (standIn: NeonStandIn, body: unknown, headers: Record<string, string> = {}) =>
  fetch(standIn.endpoint, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

/**
 * Pools connections as workerd's fetch does: an idle socket stays for reuse 5 s (KJ's default
 * idle timeout) whatever the server's Keep-Alive hint says, where Node's own Agent would drop it
 * at once on a short hint.
 */
class WorkerdLikePool extends Agent {
  override keepSocketAlive(socket: Duplex): boolean {
    const tcp = socket as Socket;
    tcp.setKeepAlive(true, 1_000);
    tcp.unref();
    tcp.setTimeout(5_000);
    return true;
  }
}

/** A POST over `agent` (false: a fresh connection); resolves status and parsed body, rejects on a dropped socket. */
function postOver(standIn: NeonStandIn, agent: Agent | false, body: unknown): Promise<{ status: number; body: unknown }> {
  const url = new URL(standIn.endpoint);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

/**
 * `n` requests at once, each with its own answer: single queries, batches, and slow queries
 * (pg_sleep) that hold the database while the others queue. Resolves what went wrong, if anything.
 */
async function burst(standIn: NeonStandIn, n: number, agent: Agent | false): Promise<string[]> {
  const requests = Array.from({ length: n }, (_, i) => {
    const kind = i % 3;
    if (kind === 0) return { body: { query: "select $1::int * 2 as n", params: [String(i)] }, rows: [[String(i * 2)]] };
    if (kind === 1) return { body: { query: "select $1::int as n from pg_sleep(0.01)", params: [String(i)] }, rows: [[String(i)]] };
    return {
      body: { queries: [{ query: "select $1::int as n", params: [String(i)] }, { query: "select $1::text || '!' as t", params: [String(i)] }] },
      results: [[[String(i)]], [[`${i}!`]]],
    };
  });
  const outcomes = await Promise.allSettled(requests.map(({ body }) => postOver(standIn, agent, body)));
  return outcomes.flatMap((outcome, i) => {
    if (outcome.status === "rejected") return [`#${i}: ${String((outcome.reason as Error).message)}`];
    const expected = requests[i]!;
    const answer = outcome.value.body as { rows?: unknown; results?: Array<{ rows: unknown }> };
    const got = "results" in expected ? answer.results?.map((result) => result.rows) : answer.rows;
    const wanted = "results" in expected ? expected.results : expected.rows;
    return outcome.value.status === 200 && JSON.stringify(got) === JSON.stringify(wanted)
      ? []
      : [`#${i}: ${outcome.value.status} ${JSON.stringify(outcome.value.body)}`];
  });
}

/** Resolves in the first turn of the event loop once `ms` have passed: right after a blocking call returns, before any timer runs. */
function nextTurnAfter(ms: number): Promise<void> {
  const start = performance.now();
  return new Promise((resolve) => {
    const check = () => (performance.now() - start >= ms ? resolve() : setImmediate(check));
    setImmediate(check);
  });
}

/** A minimal wire-protocol client: startup, one simple query, then Terminate — as psql does. */
function psqlLikeSession(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let readyCount = 0;
    socket.on("error", reject);
    socket.on("connect", () => socket.write(protocol.serialize.startup({ user: "postgres", database: "postgres" })));
    socket.on("data", (data) => {
      // Each ReadyForQuery ('Z') ends a round: after startup, send the query; after it, quit.
      for (const byte of data) if (byte === 0x5a) readyCount += 1;
      if (readyCount === 1) socket.write(protocol.serialize.query("select 2"));
      if (readyCount >= 2) {
        socket.end(protocol.serialize.end());
        socket.on("close", () => resolve());
      }
    });
  });
}

describe("Neon HTTP stand-in", () => {
  it("answers in Neon's shape: raw text values with type OIDs, and Postgres error fields on 400", async () => {
    const standIn = await start({ httpPort: 0 });
    const ok = await post(standIn, { query: "select $1::int + 1 as n, $2::text as t", params: ["41", null] });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      command: "SELECT",
      rowCount: 1,
      fields: [{ name: "n", dataTypeID: 23 }, { name: "t", dataTypeID: 25 }],
      rows: [["42", null]],
    });

    const failing = await post(standIn, { query: "select * from nowhere" });
    expect(failing.status).toBe(400);
    expect(await failing.json()).toMatchObject({ code: "42P01", severity: "ERROR", message: expect.stringMatching(/nowhere/) });
  });

  it("rejects malformed requests with clear statuses", async () => {
    const standIn = await start({ httpPort: 0 });
    expect((await fetch(standIn.endpoint)).status).toBe(405);
    const badJson = await fetch(standIn.endpoint, { method: "POST", body: "{not json" });
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toEqual({ message: "request body is not valid JSON" });
    expect((await post(standIn, { queries: [{ query: "select 1" }] }, { "neon-batch-isolation-level": "Chaotic" })).status).toBe(400);
  });

  it("keeps answering HTTP queries after a wire-protocol client disconnects", async () => {
    const standIn = await start({ httpPort: 0, wirePort: 0 });
    await psqlLikeSession(standIn.wirePort!);
    const response = await post(standIn, { query: "select 1 as x" });
    expect(await response.json()).toMatchObject({ rows: [["1"]] });
  });

  it("persists data in its data directory across restarts", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "pglite-"));
    try {
      const first = await startNeonStandIn({ httpPort: 0, dataDir });
      await post(first, { queries: [{ query: "create table kept (v text)" }, { query: "insert into kept values ('still here')" }] });
      await first.close();
      const second = await start({ httpPort: 0, dataDir });
      expect(await (await post(second, { query: "select v from kept" })).json()).toMatchObject({ rows: [["still here"]] });
    } finally {
      for (const standIn of started.splice(0)) await standIn.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("answers every request of a burst of 200, then 400, over fresh connections", async () => {
    const standIn = await start({ httpPort: 0 });
    expect(await burst(standIn, 200, false)).toEqual([]);
    expect(await burst(standIn, 400, false)).toEqual([]);
  });

  it("keeps pooled connections through a burst: none is dropped while PGlite holds the event loop", { timeout: 60_000 }, async () => {
    const standIn = await start({ httpPort: 0 });
    const pool = new WorkerdLikePool({ keepAlive: true });
    try {
      expect(await burst(standIn, 200, pool)).toEqual([]);
      // A long statement holds PGlite, and with it this whole process, for as long as the pool
      // keeps an idle socket. The next burst goes out on the pooled sockets in the first turn
      // after it: a server whose idle timeout is shorter than the pool's has by then marked
      // those sockets expired, closes them before reading what waits on them, and drops those
      // requests, as the Worker's fetch saw under load.
      const held = postOver(standIn, false, { query: "select pg_sleep(5)" });
      await nextTurnAfter(4_000);
      expect(await burst(standIn, 400, pool)).toEqual([]);
      expect((await held).status).toBe(200);
    } finally {
      pool.destroy();
    }
  });

  it("names a busy port instead of hanging", async () => {
    const first = await start({ httpPort: 0 });
    const port = Number(new URL(first.endpoint).port);
    await expect(startNeonStandIn({ httpPort: port })).rejects.toThrow(`port ${port} (neon-http) is already in use`);
  });
});
