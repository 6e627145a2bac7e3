import { protocol } from "@electric-sql/pglite";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { burst, burstAfterHold } from "./burst.ts";
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
    expect((await burst(standIn.endpoint, 200, false)).failures).toEqual([]);
    expect((await burst(standIn.endpoint, 400, false)).failures).toEqual([]);
  });

  it("keeps pooled connections through a burst: none is dropped while PGlite holds the event loop", { timeout: 60_000 }, async () => {
    const standIn = await start({ httpPort: 0 });
    // Held as long as the pool keeps an idle socket: any shorter idle timeout on the server fails.
    const { first, second, held } = await burstAfterHold(standIn.endpoint, { first: 200, second: 400, holdSeconds: 5 });
    expect(first.failures).toEqual([]);
    expect(second.failures).toEqual([]);
    expect(held.status).toBe(200);
  });

  it("names a busy port instead of hanging", async () => {
    const first = await start({ httpPort: 0 });
    const port = Number(new URL(first.endpoint).port);
    await expect(startNeonStandIn({ httpPort: port })).rejects.toThrow(`port ${port} (neon-http) is already in use`);
  });
});
