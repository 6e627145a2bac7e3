// A burst of suggestion generations against a running local stack (`npm run dev`): `--users`
// users with `--sessions` text sessions each, every session with an authenticated socket, start
// a generation all at once (`--count` suggestions each, 1–5). Prints how many starts answered
// 202 and what the others answered (status, code, message), the latency of the starts, then
// follows every generation on its socket to its end: how many completed, with exactly `count`
// suggestions, with every event in seq order. Exits non-zero unless every one did.
// Usage: npm run bench:generate-burst [-- --users 100 --sessions 2 --count 3 --url http://127.0.0.1:8787]
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureLocalClerkKeys } from "../../local/clerk/keys.ts";
import { mintSessionToken } from "../../local/clerk/token.ts";
import { expectJson, seedSession } from "../../local/api-client.ts";
import { count, percentile } from "./stats.ts";

const { values } = parseArgs({
  options: {
    users: { type: "string", default: "100" },
    sessions: { type: "string", default: "2" },
    count: { type: "string", default: "3" },
    "timeout-seconds": { type: "string", default: "180" },
    url: { type: "string", default: "http://127.0.0.1:8787" },
  },
});
const users = count(values, "users");
const perUser = count(values, "sessions");
const suggestionCount = count(values, "count");
const followMs = count(values, "timeout-seconds") * 1000;
const url = values.url;
const keys = await ensureLocalClerkKeys(join(fileURLToPath(new URL("../..", import.meta.url)), ".data", "clerk"));

/** Runs `work` over `items`, `width` at a time: the setup should not itself be a burst. */
async function inBatches<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(work))));
  return out;
}

const run = Date.now();
const tokens = await Promise.all(
  Array.from({ length: users }, (_, i) => mintSessionToken(keys.privateJwk, { sub: `user_burst_${run}_${i}`, ttlSeconds: 3600 })),
);
const targets = (
  await inBatches(tokens, 10, async (token) => {
    await expectJson(await fetch(`${url}/api/v1/users/me`, { headers: { Authorization: `Bearer ${token}` } }), 200, "GET /users/me");
    const ids: string[] = [];
    for (let s = 0; s < perUser; s++) ids.push(await seedSession(url, token, 4));
    return Promise.all(ids.map(async (sessionId) => ({ token, sessionId, socket: await follow(sessionId, token) })));
  })
).flat();

const started = performance.now();
const results = await Promise.all(
  targets.map(async ({ token, sessionId }) => {
    const t0 = performance.now();
    try {
      const response = await fetch(`${url}/api/v1/sessions/${sessionId}/generate-suggestions`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ count: suggestionCount }),
      });
      const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
      const error = body.error ? `${body.error.code}: ${body.error.message}` : undefined;
      return { status: response.status, error, ms: performance.now() - t0, retryAfter: response.headers.get("Retry-After") };
    } catch (error) {
      return { status: 0, error: `fetch failed: ${String(error)}`, ms: performance.now() - t0, retryAfter: null };
    }
  }),
);
const wall = performance.now() - started;
const outcomes = new Map<string, number>();
for (const r of results) {
  const key = r.status === 202 ? "202" : `${r.status} ${r.error ?? ""}${r.retryAfter ? ` (Retry-After ${r.retryAfter})` : ""}`;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
}
const latencies = results.filter((r) => r.status === 202).map((r) => r.ms).sort((a, b) => a - b);
console.log(`${targets.length} generation starts at once (${users} users × ${perUser} text sessions)`);
for (const [key, n] of [...outcomes].sort()) console.log(`  ${key}: ${n}`);
console.log(
  `  start latency p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms, max ${latencies.at(-1)?.toFixed(0)} ms; burst wall ${wall.toFixed(0)} ms`,
);

// Every started generation, followed on its socket to its end.
const ends = await Promise.all(targets.map((target, i) => (results[i]!.status === 202 ? target.socket.end(followMs) : Promise.resolve(undefined))));
for (const target of targets) target.socket.close();
const endings = new Map<string, number>();
for (const end of ends) if (end) endings.set(end.kind, (endings.get(end.kind) ?? 0) + 1);
const exact = ends.filter((end) => end?.kind === "completed" && end.suggestions === suggestionCount).length;
const ordered = ends.filter((end) => end?.ordered).length;
const finished = performance.now() - started;
console.log(`followed on the sockets (${(finished / 1000).toFixed(1)} s from the burst to the last end):`);
for (const [kind, n] of [...endings].sort()) console.log(`  ${kind}: ${n}`);
console.log(`  completed with exactly ${suggestionCount} suggestions: ${exact} of ${targets.length}; events in seq order on ${ordered} sockets`);
const ok = outcomes.get("202") === targets.length && exact === targets.length && ordered === targets.length;
process.exit(ok ? 0 : 1);

/** An authenticated socket on the session's room that records how its generation ends. */
async function follow(sessionId: string, token: string) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/api/v1/sessions/${sessionId}/ws`);
  let lastSeq = 0;
  let ordered = true;
  let ended: { kind: string; suggestions?: number } | undefined;
  let onEnd: (() => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "authenticate", token })), { once: true });
    ws.addEventListener("error", () => reject(new Error(`socket for ${sessionId} failed`)), { once: true });
    ws.addEventListener("message", (message) => {
      const frame = JSON.parse(String(message.data)) as { type: string; seq?: number; suggestions?: unknown[] };
      if (frame.type === "authenticated") return resolve();
      if (typeof frame.seq === "number" && frame.type !== "error" && frame.type !== "pong") {
        if (frame.seq <= lastSeq) ordered = false;
        lastSeq = frame.seq;
      }
      if (frame.type === "suggestion.completed") ended = { kind: "completed", suggestions: frame.suggestions?.length };
      else if (frame.type === "generation.failed" || frame.type === "generation.cancelled") ended = { kind: frame.type };
      if (ended) onEnd?.();
    });
  });
  return {
    end: (timeoutMs: number) =>
      new Promise<{ kind: string; suggestions?: number; ordered: boolean }>((resolve) => {
        const done = () => resolve({ ...(ended ?? { kind: "no end within the timeout" }), ordered });
        if (ended) return done();
        const timer = setTimeout(done, timeoutMs);
        onEnd = () => {
          clearTimeout(timer);
          done();
        };
      }),
    close: () => ws.close(),
  };
}
