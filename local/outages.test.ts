import { Client } from "@upstash/qstash";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StandIns, startEphemeralStandIns } from "./stand-ins.ts";

// The outage switches the resilience suite uses: each takes its stand-in off the network for
// real (the client sees a refused or cut connection) and brings it back with its data.
describe("stand-in outages", () => {
  let standIns: StandIns;
  beforeAll(async () => {
    standIns = await startEphemeralStandIns({ qstashDelivery: "pull" });
  });
  afterAll(() => standIns.stop());

  const sql = (query: string) =>
    fetch(standIns.neon.endpoint, {
      method: "POST",
      headers: { "Neon-Connection-String": standIns.neon.connectionString, "Content-Type": "application/json" },
      body: JSON.stringify({ query, params: [] }),
    });

  it("takes Postgres's HTTP endpoint down and back with its rows", async () => {
    expect((await sql("create table outage_probe (n int)")).status).toBe(200);
    expect((await sql("insert into outage_probe values (7)")).status).toBe(200);
    await standIns.outages.postgres.stop();
    await expect(sql("select n from outage_probe")).rejects.toThrow();
    await standIns.outages.postgres.start();
    const answer = (await (await sql("select n from outage_probe")).json()) as { rows: unknown[] };
    expect(answer.rows).toEqual([["7"]]);
  });

  it("takes the Redis REST adapter down and back, Redis untouched", async () => {
    const redis = new Redis({ ...standIns.redisRest, retry: { retries: 0 } });
    await redis.set("outage:probe", "kept");
    await standIns.outages["redis-rest"].stop();
    await expect(redis.get("outage:probe")).rejects.toThrow();
    await standIns.outages["redis-rest"].start();
    expect(await redis.get("outage:probe")).toBe("kept");
  });

  it("refuses publishing while QStash is down, then delivers what it had", async () => {
    const client = new Client({ baseUrl: standIns.qstash.url, token: standIns.qstash.token, retry: false });
    const before = await client.publishJSON({ url: "http://127.0.0.1:9/outage", body: { n: 1 } });
    await standIns.outages.qstash.stop();
    await expect(client.publishJSON({ url: "http://127.0.0.1:9/outage", body: { n: 2 } })).rejects.toThrow();
    // A pull during the outage gets no connection, let alone the held delivery.
    const pull = (waitMs: number) => fetch(`${standIns.qstash.url}/__control/pull?waitMs=${waitMs}`, { method: "POST", headers: { Authorization: `Bearer ${standIns.qstash.token}` } });
    await expect(pull(0)).rejects.toThrow();
    await standIns.outages.qstash.start();
    const pulled = (await (await pull(2000)).json()) as { delivery: { messageId: string } | null };
    expect(pulled.delivery?.messageId).toBe(before.messageId);
  });

  it("cuts one AI vendor while the others serve", async () => {
    const chat = (vendor: "openai" | "anthropic") =>
      fetch(vendor === "openai" ? `${standIns.aiUpstream.baseUrls.openai}/chat/completions` : `${standIns.aiUpstream.baseUrls.anthropic}/v1/messages`, {
        method: "POST",
        headers: { Authorization: "Bearer local", "x-api-key": "local", "Content-Type": "application/json" },
        body: JSON.stringify({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }),
      });
    await standIns.outages.openai.stop();
    await expect(chat("openai")).rejects.toThrow();
    expect((await chat("anthropic")).status).toBe(200);
    await standIns.outages.openai.start();
    expect((await chat("openai")).status).toBe(200);
  });
});
