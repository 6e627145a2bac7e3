// A burst of suggestion generations against a running local stack (`npm run dev`): `--users`
// users with `--sessions` text sessions each start a generation all at once. Prints how many
// starts answered 202 and what the others answered (status, code, message), and the latency of
// the starts. Usage: npm run bench:generate-burst [-- --users 100 --sessions 2 --url http://127.0.0.1:8787]
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureLocalClerkKeys } from "../../local/clerk/keys.ts";
import { mintSessionToken } from "../../local/clerk/token.ts";
import { expectJson, seedSession } from "../../local/api-client.ts";
import { count, percentile } from "./stack.ts";

const { values } = parseArgs({
  options: {
    users: { type: "string", default: "100" },
    sessions: { type: "string", default: "2" },
    url: { type: "string", default: "http://127.0.0.1:8787" },
  },
});
const users = count(values, "users");
const perUser = count(values, "sessions");
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
    return ids.map((sessionId) => ({ token, sessionId }));
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
        body: JSON.stringify({ count: 3 }),
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
const latencies = results.map((r) => r.ms).sort((a, b) => a - b);
console.log(`${targets.length} generation starts at once (${users} users × ${perUser} text sessions)`);
for (const [key, n] of [...outcomes].sort()) console.log(`  ${key}: ${n}`);
console.log(
  `  start latency p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms; burst wall ${wall.toFixed(0)} ms`,
);
