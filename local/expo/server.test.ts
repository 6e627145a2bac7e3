import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ExpoStandIn, type RecordedRequest, startExpoStandIn } from "./server.ts";

const token = (n: number) => `ExponentPushToken[device-${n}]`;

describe("local Expo push stand-in", () => {
  let expo: ExpoStandIn;
  beforeAll(async () => {
    expo = await startExpoStandIn({ port: 0 });
  });
  afterAll(() => expo.close());
  beforeEach(() => control("/__reset", {}));

  async function control(path: string, body?: unknown) {
    const response = await fetch(`${expo.origin}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
    expect(response.status, path).toBe(200);
    return response.json();
  }
  const post = (path: "send" | "getReceipts", body: unknown, gzip = false) =>
    fetch(`${expo.url}/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(gzip && { "content-encoding": "gzip" }) },
      body: gzip ? gzipSync(JSON.stringify(body)) : JSON.stringify(body),
    });

  it("answers tickets for gzipped and plain sends, receipts for their ids, and records both", async () => {
    const sent = await post("send", [{ to: token(1), body: "a" }, { to: token(2), body: "b" }], true);
    expect(sent.status).toBe(200);
    const { data: tickets } = (await sent.json()) as { data: Array<{ status: string; id: string }> };
    expect(tickets.map((t) => t.status)).toEqual(["ok", "ok"]);
    const single = await post("send", { to: token(3), body: "c" });
    expect(((await single.json()) as { data: unknown[] }).data).toHaveLength(1);

    const receipts = await post("getReceipts", { ids: [tickets[0]!.id, "never-issued"] });
    expect(await receipts.json()).toEqual({ data: { [tickets[0]!.id]: { status: "ok" } } });

    const recorded = (await control("/__messages")) as { requests: RecordedRequest[]; messages: Array<{ to: string }> };
    expect(recorded.requests.map((r) => [r.path, r.gzip, r.status])).toEqual([
      ["send", true, 200],
      ["send", false, 200],
      ["getReceipts", false, 200],
    ]);
    expect(recorded.messages.map((m) => m.to)).toEqual([token(1), token(2), token(3)]);
    expect(recorded.requests[2]!.ids).toEqual([tickets[0]!.id, "never-issued"]);
  });

  it("answers the Expo error it is told to, per token, on the ticket or on the receipt", async () => {
    await control("/__faults", { token: token(1), error: "DeviceNotRegistered", in: "ticket" });
    await control("/__faults", { token: token(2), error: "MessageTooBig", in: "receipt" });
    const { data: tickets } = (await (await post("send", [{ to: token(1) }, { to: token(2) }])).json()) as {
      data: Array<{ status: string; id?: string; details?: { error: string } }>;
    };
    expect(tickets[0]).toMatchObject({ status: "error", details: { error: "DeviceNotRegistered", expoPushToken: token(1) } });
    expect(tickets[1]).toMatchObject({ status: "ok" });
    const receipts = (await (await post("getReceipts", { ids: [tickets[1]!.id] })).json()) as { data: Record<string, unknown> };
    expect(receipts.data[tickets[1]!.id!]).toMatchObject({ status: "error", details: { error: "MessageTooBig" } });

    // error: null clears a fault.
    await control("/__faults", { token: token(1), error: null, in: "ticket" });
    expect(((await (await post("send", [{ to: token(1) }])).json()) as { data: Array<{ status: string }> }).data[0]!.status).toBe("ok");
  });

  it("fails the next request once with a programmed status, then answers again", async () => {
    await control("/__faults", { status: 429, path: "send", retryAfter: 1 });
    const limited = await post("send", [{ to: token(1) }]);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(await limited.json()).toMatchObject({ errors: [{ code: "TOO_MANY_REQUESTS" }] });
    expect((await post("send", [{ to: token(1) }])).status).toBe(200);

    await control("/__faults", { status: 503, path: "getReceipts" });
    expect((await post("send", [{ to: token(1) }])).status).toBe(200);
    expect((await post("getReceipts", { ids: [] })).status).toBe(503);
    expect((await post("getReceipts", { ids: [] })).status).toBe(200);
  });

  it("holds Expo's limits: 100 messages per send, 1,000 ids per getReceipts; bad bodies are 400s", async () => {
    const tooMany = await post("send", Array.from({ length: 101 }, (_, i) => ({ to: token(i) })));
    expect(tooMany.status).toBe(400);
    expect(await tooMany.json()).toMatchObject({ errors: [{ code: "PUSH_TOO_MANY_NOTIFICATIONS" }] });
    expect((await post("getReceipts", { ids: Array.from({ length: 1_001 }, (_, i) => `id-${i}`) })).status).toBe(400);
    const garbled = await fetch(`${expo.url}/send`, { method: "POST", headers: { "content-encoding": "gzip" }, body: "not gzip" });
    expect(garbled.status).toBe(400);
    const badFault = await fetch(`${expo.origin}/__faults`, { method: "POST", body: JSON.stringify({ token: token(1), in: "elsewhere" }) });
    expect(badFault.status).toBe(400);
    const { messages } = (await control("/__messages")) as { messages: unknown[] };
    expect(messages).toEqual([]);
  });
});
