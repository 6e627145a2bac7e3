import { env, evictDurableObject } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { suggestionGenerations } from "../../src/db/schema";
import { parseRoomFrames, type RoomAddress, type RoomFrame } from "../../src/realtime/protocol";
import { roomStub } from "../../src/realtime/rooms";
import { sessionRoom } from "../../src/modules/sessions/room";
import { callAs, callTheEntryDirectly, json, resetDatabase, signedInUser, testDb } from "../helpers";
import { resetQStash, useJobPump } from "../jobs";
import { injectFault, resetUpstream } from "../upstream";
import { type Frame, isRoomEvent, openSocket, randomIp, type TestSocket } from "../ws";
import { countFigures } from "./figures";
import { CANARY } from "./leaks";

/**
 * SPEC §6: "No event is lost across a reconnect." Rooms stream suggestion generations one after
 * another (the AI upstream paced, so tokens arrive over seconds) to three clients each; clients
 * are cut off at random points (a seeded PRNG), 1,000 times in all, each time reconnecting from
 * its last seq, and the rooms' Durable Objects are evicted mid-stream now and then. In the end
 * every client must hold the room's whole event log — every seq exactly once, in order, equal to
 * what the room stored — and the log itself must spell each generation's stored texts.
 */

// Thousands of requests: past the pool's per-request slowdown of SELF (see callTheEntryDirectly).
callTheEntryDirectly();

/** mulberry32: the same seed, the same run. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)), pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]! };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const DISCONNECTS = 1_000;
const ROOMS = 4;
/** Three sockets per user (one room each): with one reconnect at a time per user, one more is free under WS_MAX_SOCKETS_PER_USER (4) for a socket whose close is still being released. */
const CLIENTS_PER_ROOM = 3;
/** Reconnects run this many at a time (more only makes each slower in the test runtime). */
const LANES = 2;
/** Between the upstream's tokens: a generation streams for a few seconds. */
const TOKEN_DELAY_MS = 250;
/**
 * Room restarts, spread over the run. Each restart constructs the room's object anew, and the
 * pool wraps its class in one more Proxy per construction (cloudflare/workers-sdk #15092): a few
 * dozen keep the rooms as fast as they are.
 */
const MAX_RESTARTS = 30;
/** Room restarts the run must reach: the rooms stream on past the disconnects until they have (a slow machine evicts less often). */
const MIN_RESTARTS = 5;
/** Words only the suggestions prompt has: the pacing leaves the phase call alone. */
const SUGGESTIONS_PROMPT = "Write replies the user could send next";

/**
 * How a client reconnects, each resuming from its last seq: `?afterSeq` on an upgrade carrying a
 * bearer header or a ticket; `afterSeq` in a first-frame `authenticate`; a first-frame
 * `authenticate` with a `resume` sent right behind it, without waiting for the answer (all four
 * replay before anything live); or a bearer upgrade and a `resume` once `authenticated` came.
 */
const METHODS = ["header", "ticket", "authenticate", "pipelined", "resume"] as const;
type Method = (typeof METHODS)[number];

type Connection = { socket: TestSocket; method: Method; afterSeq: number; authSeq?: number };

type Room = { address: RoomAddress; sessionId: string; token: string; streaming: boolean };

/** One client of a room: the events it kept, in order, across all its connections. */
function createClient(room: Room, name: string) {
  const events: Frame[] = [];
  const anomalies: string[] = [];
  const wronglyClosed: string[] = [];
  const path = `/api/v1/sessions/${room.sessionId}/ws`;
  let connection: Connection | undefined;
  let wireDisorder = 0;
  const lastSeq = () => events.at(-1)?.seq ?? 0;

  async function open(method: Method, afterSeq: number): Promise<TestSocket> {
    const bearer = { Authorization: `Bearer ${room.token}` };
    if (method === "header") return openSocket(`${path}?afterSeq=${afterSeq}`, bearer);
    if (method === "ticket") {
      // From an address of its own, as each upgrade is: the per-IP limit is another test's subject.
      const issued = await json<{ url: string }>(await callAs(room.token, `${path}-ticket`, { method: "POST", headers: { "CF-Connecting-IP": randomIp() } }));
      if (!issued.success) throw new Error(`no ticket: ${JSON.stringify(issued.error)}`);
      const url = new URL(issued.data.url);
      return openSocket(`${url.pathname}${url.search}&afterSeq=${afterSeq}`);
    }
    if (method === "resume") return openSocket(path, bearer);
    const socket = await openSocket(path);
    if (method === "pipelined") {
      // `authenticate`, then `resume` at once, without waiting for the answer.
      socket.send({ type: "authenticate", token: room.token });
      socket.send({ type: "resume", afterSeq });
    } else {
      socket.send({ type: "authenticate", token: room.token, afterSeq });
    }
    return socket;
  }

  /**
   * Opens a connection by `method` and waits until it is live. A failed attempt is kept (and a
   * socket the room closed on the way counted), then tried again, as an app does, five times.
   */
  async function connect(method: Method): Promise<void> {
    const afterSeq = lastSeq();
    for (let attempt = 1; ; attempt++) {
      try {
        const socket = await open(method, afterSeq);
        // Live (`authenticated`), or closed by the room on the way: whichever comes first.
        const answered = socket.frame("authenticated", 0, 10_000).then((frame) => ({ frame }));
        const closing = socket.closed(10_000).then((close) => ({ close }));
        closing.catch(() => undefined);
        const first = await Promise.race([answered, closing]);
        answered.catch(() => undefined);
        if ("close" in first) {
          wronglyClosed.push(`${name} ${method}: closed ${first.close.code} ${first.close.reason}`);
          throw new Error(`closed ${first.close.code} ${first.close.reason} before authenticated`);
        }
        if (method === "resume") socket.send({ type: "resume", afterSeq });
        connection = { socket, method, afterSeq, authSeq: first.frame.seq };
        return;
      } catch (error) {
        anomalies.push(`${name} ${method} attempt ${attempt}: ${error instanceof Error ? error.message.slice(0, 200) : String(error)}`);
        // Given up for now: the client stays cut off until its next turn reconnects it.
        if (attempt >= 5) return;
        await sleep(100 * attempt);
      }
    }
  }

  /**
   * Takes what the connection delivered and stops listening to it, as an app drops a socket it
   * gives up on. With `resume`, the replay covers (afterSeq, seq at authentication] and may arrive
   * after live events past it: those are placed after the replay, and dropped if the replay was
   * cut short (the next resume brings them again).
   */
  function collect(): void {
    if (!connection) return;
    const { socket, method, afterSeq, authSeq = 0 } = connection;
    const arrived = socket.frames.filter((frame) => isRoomEvent(frame) && frame.type !== "authenticated");
    for (const frame of socket.frames) if (frame.type === "error") anomalies.push(`${name} ${method}: error frame ${String(frame.code)}`);
    if (method !== "resume" || authSeq <= afterSeq) {
      events.push(...arrived);
    } else {
      const replayed = arrived.filter((frame) => frame.seq! <= authSeq);
      const live = arrived.filter((frame) => frame.seq! > authSeq);
      const firstLive = arrived.findIndex((frame) => frame.seq! > authSeq);
      if (firstLive !== -1 && firstLive < arrived.findLastIndex((frame) => frame.seq! <= authSeq)) wireDisorder++;
      events.push(...replayed);
      if (replayed.at(-1)?.seq === authSeq) events.push(...live);
    }
    connection = undefined;
  }

  return {
    name,
    room,
    events,
    anomalies,
    wronglyClosed,
    connect,
    get wireDisorder() {
      return wireDisorder;
    },
    /** Cuts the connection off: what arrived is kept, the rest is the next connection's to bring. */
    disconnect(code: number): void {
      const socket = connection?.socket;
      collect();
      try {
        socket?.ws.close(code, "forced");
      } catch {
        // Already closed by the server.
      }
    },
    /** Waits until the live connection has brought every event up to `seq`, then keeps them and closes it. */
    async drain(seq: number): Promise<void> {
      const socket = connection?.socket;
      const newest = () => Math.max(lastSeq(), ...(socket?.frames.filter(isRoomEvent).map((frame) => frame.seq ?? 0) ?? []));
      const deadline = Date.now() + 10_000;
      while (newest() < seq && Date.now() < deadline) await sleep(25);
      collect();
      socket?.close();
    },
  };
}

type Client = ReturnType<typeof createClient>;

/** A user with a ready text session: the room its clients join. */
async function readyRoom(): Promise<Room> {
  const { token } = await signedInUser();
  const created = await json<{ id: string }>(
    await callAs(token, "/api/v1/sessions", {
      method: "POST",
      json: {
        type: "text",
        messages: [
          { sender: "match", text: `${CANARY} Two truths and a lie: go` },
          { sender: "user", text: `I have met a penguin, I hate pizza, I speak Welsh ${CANARY}` },
          { sender: "match", text: `The pizza one is the lie ${CANARY}` },
        ],
      },
    }),
  );
  if (!created.success) throw new Error(`no session: ${JSON.stringify(created)}`);
  return { address: sessionRoom(created.data.id), sessionId: created.data.id, token, streaming: false };
}

/** Starts generations in the room one after another until told to stop; answers their ids. */
async function generateUntil(room: Room, stop: () => boolean): Promise<string[]> {
  const ids: string[] = [];
  while (!stop()) {
    const started = await json<{ generationId: string }>(
      await callAs(room.token, `/api/v1/sessions/${room.sessionId}/generate-suggestions`, { method: "POST", json: { count: 3 } }),
    );
    if (!started.success) throw new Error(`generation not started: ${JSON.stringify(started.error)}`);
    ids.push(started.data.generationId);
    room.streaming = true;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [row] = await testDb().select({ status: suggestionGenerations.status }).from(suggestionGenerations).where(eq(suggestionGenerations.id, started.data.generationId));
      if (row && row.status !== "queued" && row.status !== "streaming") {
        if (row.status !== "completed") throw new Error(`a generation ended ${row.status}`);
        break;
      }
      if (Date.now() > deadline) throw new Error("a generation did not end within 30 s");
      await sleep(250);
    }
    room.streaming = false;
  }
  return ids;
}

/** Each generation's texts as the room's `suggestion.delta` events spell them, next to the stored ones. */
function rebuiltTexts(frames: RoomFrame[]) {
  const generations = new Map<string, { streamed: string[]; stored?: string[] }>();
  for (const frame of frames) {
    if (frame.type === "generation.restarted") generations.set(frame.generationId, { streamed: [] });
    if (frame.type === "suggestion.delta") {
      const generation = generations.get(frame.generationId) ?? { streamed: [] };
      generation.streamed[frame.index] = (generation.streamed[frame.index] ?? "") + frame.delta;
      generations.set(frame.generationId, generation);
    }
    if (frame.type === "suggestion.completed") {
      const generation = generations.get(frame.generationId) ?? { streamed: [] };
      if (generation.stored) generation.stored.push("(completed twice)");
      else generation.stored = frame.suggestions.map((suggestion) => suggestion.text);
      generations.set(frame.generationId, generation);
    }
  }
  return generations;
}

/** Compares what a client kept with the room's log: lost, duplicated and out-of-order seqs. */
function audit(client: Client, log: RoomFrame[]) {
  const seen = new Map<number, number>();
  let outOfOrder = 0;
  let previous = 0;
  for (const event of client.events) {
    const seq = event.seq!;
    seen.set(seq, (seen.get(seq) ?? 0) + 1);
    if (seq <= previous) outOfOrder++;
    previous = Math.max(previous, seq);
  }
  const lost = log.filter((frame) => !seen.has(frame.seq)).map((frame) => frame.seq);
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([seq]) => seq);
  const byKept = new Map(client.events.map((event) => [event.seq!, event]));
  const altered = log.filter((frame) => byKept.has(frame.seq) && JSON.stringify(byKept.get(frame.seq)) !== JSON.stringify(frame)).map((frame) => frame.seq);
  return { lost, duplicated, outOfOrder, altered };
}

describe("forced disconnects and room restarts during live generations", () => {
  useJobPump();

  it(`${DISCONNECTS} disconnects resumed by seq, rooms evicted mid-stream: every client ends with every event exactly once, in order`, async ({ task }) => {
    await Promise.all([resetDatabase(), resetQStash(), resetUpstream()]);
    const random = prng(20261129);
    await injectFault({ tokenDelayMs: TOKEN_DELAY_MS }, { match: SUGGESTIONS_PROMPT, times: 500 });

    const rooms = await Promise.all(Array.from({ length: ROOMS }, () => readyRoom()));
    const clients = rooms.flatMap((room, r) => Array.from({ length: CLIENTS_PER_ROOM }, (_, c) => createClient(room, `room ${r} client ${c}`)));
    await Promise.all(clients.map((client) => client.connect("header")));

    let stopping = false;
    const generations = rooms.map((room) => generateUntil(room, () => stopping));

    // Lanes cut clients off one at a time each, at random points of the streams, each lane in its
    // own rooms (a user's sockets are reconnected one after another, under the per-user cap).
    let disconnects = 0;
    let midStream = 0;
    const methods = Object.fromEntries(METHODS.map((method) => [method, 0])) as Record<Method, number>;
    const lanes = Array.from({ length: LANES }, async (_, lane) => {
      const own = prng(random.int(1, 2 ** 31));
      const mine = clients.filter((client) => rooms.indexOf(client.room) % LANES === lane);
      const quota = Math.floor(DISCONNECTS / LANES) + (lane < DISCONNECTS % LANES ? 1 : 0);
      for (let n = 0; n < quota; n++) {
        await sleep(own.int(0, 10));
        const client = own.pick(mine);
        if (client.room.streaming) midStream++;
        client.disconnect(own.pick([1000, 4000, 4999]));
        disconnects++;
        const method = own.pick(METHODS);
        methods[method]++;
        await client.connect(method);
      }
    });

    // Meanwhile the rooms' objects are evicted mid-stream (their sockets hibernate and survive).
    let restarts = 0;
    let churning = true;
    const evicting = new Set<Room>();
    const pending: Array<Promise<unknown>> = [];
    const evictions = (async () => {
      while (churning && restarts + evicting.size < MAX_RESTARTS) {
        await sleep(random.int(150, 450));
        // One eviction per room at a time: an eviction waits for the room's requests in flight.
        const streaming = rooms.filter((room) => room.streaming && !evicting.has(room));
        if (streaming.length === 0) continue;
        const room = random.pick(streaming);
        evicting.add(room);
        pending.push(
          evictDurableObject(roomStub(env, room.address))
            .then(
              () => restarts++,
              () => undefined, // not running at this instant
            )
            .finally(() => evicting.delete(room)),
        );
      }
      await Promise.all(pending);
    })();

    await Promise.all(lanes);
    const enough = Date.now() + 30_000;
    while (restarts < MIN_RESTARTS && Date.now() < enough) await sleep(100);
    churning = false;
    stopping = true;
    await evictions;
    const generationIds = (await Promise.all(generations)).flat();

    let eventsLost = 0;
    let eventsDuplicated = 0;
    const problems: Array<Record<string, unknown>> = [];
    for (const room of rooms) {
      const log = parseRoomFrames(await roomStub(env, room.address).eventsAfter(0, 100_000));
      const roomClients = clients.filter((client) => client.room === room);
      await Promise.all(roomClients.map((client) => client.drain(log.at(-1)?.seq ?? 0)));
      // The room's own log: numbered without a gap, and each generation's deltas spell its stored texts.
      const gaps = log.filter((frame, i) => frame.seq !== i + 1).length;
      const misspelt = [...rebuiltTexts(log)].filter(([, g]) => JSON.stringify(g.streamed) !== JSON.stringify(g.stored)).map(([id]) => id);
      eventsLost += gaps + misspelt.length;
      if (gaps + misspelt.length > 0) problems.push({ room: room.sessionId, gaps, generationsMisspelt: misspelt });
      for (const client of roomClients) {
        const found = audit(client, log);
        eventsLost += found.lost.length + found.altered.length;
        eventsDuplicated += found.duplicated.length + found.outOfOrder;
        if (found.lost.length + found.altered.length + found.duplicated.length + found.outOfOrder > 0) {
          problems.push({ client: client.name, of: log.length, lost: found.lost.slice(0, 20), altered: found.altered.slice(0, 20), duplicated: found.duplicated.slice(0, 20), outOfOrder: found.outOfOrder });
        }
      }
    }
    await resetUpstream();

    const anomalies = clients.flatMap((client) => client.anomalies);
    const wronglyClosed = clients.flatMap((client) => client.wronglyClosed);
    countFigures(task, { reconnects: disconnects, roomRestarts: restarts, eventsLost, eventsDuplicated, socketsWronglyClosed: wronglyClosed.length });
    // Live events ahead of a `resume` frame's replay on the wire: what the protocol allows for a
    // resume sent after `authenticated` (the client orders them by `authenticated.seq`, above).
    const wireDisorder = clients.reduce((sum, client) => sum + client.wireDisorder, 0);
    const summary = { disconnects, midStream, methods, restarts, generations: generationIds.length, wireDisorder };
    expect(problems, `events lost or duplicated (${JSON.stringify(summary)})`).toEqual([]);
    expect({ eventsLost, eventsDuplicated }).toEqual({ eventsLost: 0, eventsDuplicated: 0 });
    expect(wronglyClosed, "sockets the room closed while they reconnected by the protocol").toEqual([]);
    expect(anomalies, "reconnects that failed and were tried again").toEqual([]);
    expect(disconnects).toBe(DISCONNECTS);
    // Spread over live generations, several per room, with rooms restarted under them.
    expect(midStream / disconnects, JSON.stringify(summary)).toBeGreaterThan(0.8);
    expect(generationIds.length, JSON.stringify(summary)).toBeGreaterThanOrEqual(ROOMS * 2);
    expect(restarts, JSON.stringify(summary)).toBeGreaterThanOrEqual(MIN_RESTARTS);
  });
});
