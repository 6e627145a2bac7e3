// `npm run bench:room`: one session's Durable Object room with 100 authenticated WebSockets,
// then 1,000 events published through the room's RPC `publish` (the bench Worker's
// /__bench route, never the real app's). Checks that every socket got every event in order
// (SPEC §10) and prints publish → receive latency over all socket×event samples.
// Starts and stops its own stack; exits 1 if any socket missed or misordered an event.
// Usage: npm run bench:room [-- --sockets 100 --events 1000 --batch 1]
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { expectJson, seedSession } from "../../local/api-client.ts";
import { formatTable, type Measure } from "./measures.ts";
import { type BenchStack, withBenchStack } from "./stack.ts";
import { count, percentile } from "./stats.ts";

const CONNECT_TIMEOUT_MS = 15_000;
const DRAIN_TIMEOUT_MS = 30_000;

/** Same clock on both sides: Node's high-resolution wall time, in ms. */
const now = () => performance.timeOrigin + performance.now();

type Frame = { type: string; seq: number; sentAt?: number };

interface Receiver {
  socket: WebSocket;
  /** Seqs of the bench's events, in arrival order, and each one's publish → receive latency. */
  seqs: number[];
  latencies: number[];
  /** Bench events whose seq was not above the previous one's. */
  outOfOrder: number;
  /** Any other frame after `authenticated` (an `error`, say), or the server closing: none is expected. */
  unexpected: string[];
  lastArrival: number;
}

/** Opens a socket and resolves once the room has answered `authenticate`; then records every event. */
function connect(wsUrl: string, token: string): Promise<Receiver> {
  const receiver: Receiver = { socket: new WebSocket(wsUrl), seqs: [], latencies: [], outOfOrder: 0, unexpected: [], lastArrival: 0 };
  const { socket } = receiver;
  let lastSeq = -1;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no `authenticated` frame in time")), CONNECT_TIMEOUT_MS);
    socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "authenticate", token })));
    socket.addEventListener("close", (event) => {
      receiver.unexpected.push(`close ${event.code}`);
      reject(new Error(`socket closed ${event.code} ${event.reason}`));
    });
    socket.addEventListener("message", (event) => {
      const arrived = now();
      const frame = JSON.parse(String(event.data)) as Frame;
      if (frame.type === "authenticated") {
        clearTimeout(timer);
        resolve(receiver);
      } else if (frame.sentAt !== undefined) {
        if (frame.seq <= lastSeq) receiver.outOfOrder++;
        lastSeq = frame.seq;
        receiver.seqs.push(frame.seq);
        receiver.latencies.push(arrived - frame.sentAt);
        receiver.lastArrival = arrived;
      } else {
        receiver.unexpected.push(frame.type);
      }
    });
  });
}

/**
 * Every socket comes from one address and belongs to one user (devices of the session's owner),
 * so the per-IP upgrade limit and the per-user socket cap are raised to fit them; each socket
 * sends one frame (the room allows WS_MAX_FRAMES_PER_SECOND).
 */
export const roomBenchVars = (sockets: number) => ({ RATE_LIMIT_WS_UPGRADE: String(sockets + 10), WS_MAX_SOCKETS_PER_USER: String(sockets) });

export async function benchRoom({ url, token: mint, cpuMs }: BenchStack, { sockets: socketCount, events: eventCount, batch }: { sockets: number; events: number; batch: number }): Promise<Measure[]> {
  const user = `user_bench_room_${Date.now()}`;
  const sessionId = await seedSession(url, await mint(user), 2);
  const wsUrl = `${url.replace(/^http/, "ws")}/api/v1/sessions/${sessionId}/ws`;

  // One token per socket, as from 100 devices of the session's owner.
  const receivers = await Promise.all(
    Array.from({ length: socketCount }, async () => connect(wsUrl, await mint(user))),
  );

  // Each request's events are stamped just before it is sent; the bench route awaits each
  // `publish` in turn and requests go one after another, so the room numbers them in send
  // order. They are shaped like the busiest real event, a streamed suggestion token.
  const published: number[] = [];
  const cpuBefore = cpuMs();
  const started = now();
  for (let i = 0; i < eventCount; i += batch) {
    const events = Array.from({ length: Math.min(batch, eventCount - i) }, () => ({
      type: "suggestion.delta",
      data: { generationId: "bench", index: 0, delta: "word ", sentAt: now() },
    }));
    const response = await fetch(`${url}/__bench/rooms/${sessionId}/publish`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(events),
    });
    published.push(...(await expectJson<{ seqs: number[] }>(response, 200, "POST /__bench/rooms/:id/publish")).seqs);
  }

  const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (receivers.some((r) => r.seqs.length < eventCount) && Date.now() < drainDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const finished = Math.max(...receivers.map((r) => r.lastArrival));
  const cpuAfter = cpuMs();
  // Where each event's CPU goes: the room fans it out, wrangler's dev proxy relays every frame,
  // this process reads it on every socket.
  const cpuPerEvent = (side: keyof typeof cpuAfter) => ((cpuAfter[side] - cpuBefore[side]) / eventCount).toFixed(1);

  // Nothing else publishes to this room, so its seqs must be consecutive; every socket must
  // then have received exactly that list, in that order, and nothing but it.
  const consecutive = published.every((seq, i) => seq === published[0]! + i);
  const expected = published.join(",");
  const failed = receivers.filter((r) => r.outOfOrder > 0 || r.unexpected.length > 0 || r.seqs.join(",") !== expected);
  const sum = (of: (r: Receiver) => number) => receivers.reduce((total, r) => total + of(r), 0);
  const latencies = receivers.flatMap((r) => r.latencies).sort((a, b) => a - b);
  // Only now: our own close must not count as the server's.
  for (const receiver of receivers) receiver.socket.close(1000);

  if (!consecutive || failed.length > 0) {
    throw new Error(
      `delivery FAILED on ${failed.length}/${socketCount} sockets (seqs consecutive: ${consecutive}): ${sum((r) => Math.max(0, eventCount - r.seqs.length))} ` +
        `socket×event frames missing, ${sum((r) => r.outOfOrder)} out of order, unexpected: ${[...new Set(receivers.flatMap((r) => r.unexpected))].join(", ") || "none"}`,
    );
  }
  const name = `one room, ${socketCount} sockets × ${eventCount} events`;
  return [
    {
      name: `${name}: publish → receive p50`,
      value: percentile(latencies, 50),
      unit: "ms",
      note:
        `every socket got every event in order; from stamping the event before POSTing it to the bench Worker to a socket's handler: the HTTP hop, the RPC publish, ` +
        `the room's fan-out, WebSocket delivery, and this one Node process (${availableParallelism()} CPUs shared with workerd) reading and parsing every socket's frames in turn; permessage-deflate on (Node's WebSocket offers it; the compatibility date turns it on in workerd), so the room deflates each frame once per socket`,
    },
    { name: `${name}: publish → receive p99`, value: percentile(latencies, 99), unit: "ms", target: { max: 50 } },
    {
      name: `${name}: total`,
      value: (finished - started) / 1000,
      unit: "s",
      note: `CPU per event: ${cpuPerEvent("worker")} ms in the Worker's runtime (the request, the room's ${socketCount} sends), ${cpuPerEvent("proxy")} ms in wrangler's dev proxy (relaying the request and ${socketCount} frames), ${cpuPerEvent("bench")} ms in this process (reading ${socketCount} frames)`,
    },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      sockets: { type: "string", default: "100" },
      events: { type: "string", default: "1000" },
      // Events per publish request. 1 = each event's latency on its own; more = bursts, whose
      // later events also wait for the earlier ones' publish.
      batch: { type: "string", default: "1" },
    },
  });
  const sockets = count(values, "sockets");
  await withBenchStack(roomBenchVars(sockets), async (stack) => {
    console.log(formatTable(await benchRoom(stack, { sockets, events: count(values, "events"), batch: count(values, "batch") })));
  });
}
