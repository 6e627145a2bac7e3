// `npm run bench:insights`: latency of GET /api/v1/users/me/insights for a user with `--sessions`
// analysed sessions (each with a generation of three suggestions with feedback) and 20 magic
// openers, against a running `npm run dev` (LOCAL_WORKER_PORT / LOCAL_NEON_HTTP_PORT /
// LOCAL_POSTGRES_PORT find it). Sequential requests on one keep-alive connection, interleaved
// with GET /api/v1/users/me (same auth, user lookup and rate limit, one primary-key read) so the
// difference is the insights statement. The rows are written straight to the local database.
// Usage: npm run bench:insights [-- --sessions 50 --samples 40 --warmup 10]
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureLocalClerkKeys } from "../../local/clerk/keys.ts";
import { mintSessionToken } from "../../local/clerk/token.ts";
import { expectJson } from "../../local/api-client.ts";
import { magicOpeners, openerGenerations, sessions, suggestionGenerations, suggestions } from "../../src/db/schema";
import { createDatabase } from "../../src/lib/db";
import { count, percentile } from "./stats.ts";

const { values } = parseArgs({
  options: { sessions: { type: "string", default: "50" }, samples: { type: "string", default: "40" }, warmup: { type: "string", default: "10" } },
});
const sessionCount = count(values, "sessions");
const samples = count(values, "samples");
const warmup = count(values, "warmup");
// Both routes count against RATE_LIMIT_USER (120 a minute in .dev.vars.example): stay under it.
if (2 * (samples + warmup) + 1 > 120) throw new Error("--samples plus --warmup must stay under 60: both routes count against the user's rate limit");

const url = `http://127.0.0.1:${process.env.LOCAL_WORKER_PORT ?? 8787}`;
const db = createDatabase({
  DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${process.env.LOCAL_POSTGRES_PORT ?? 5433}/postgres`,
  NEON_HTTP_ENDPOINT: `http://127.0.0.1:${process.env.LOCAL_NEON_HTTP_PORT ?? 5480}/sql`,
});
const keys = await ensureLocalClerkKeys(join(fileURLToPath(new URL("../..", import.meta.url)), ".data", "clerk"));
const token = await mintSessionToken(keys.privateJwk, { sub: `user_bench_insights_${Date.now()}`, ttlSeconds: 3600 });
const headers = { Authorization: `Bearer ${token}` };
const me = await expectJson<{ data: { id: string } }>(await fetch(`${url}/api/v1/users/me`, { headers }), 200, "GET /api/v1/users/me; is `npm run dev` running?");
const userId = me.data.id;

const tones = ["playful", "witty", "sincere"];
const feedback = ["liked", "disliked", "copied", "sent", null] as const;
const week = 7 * 24 * 3_600_000;
const seeded = await db
  .insert(sessions)
  .values(
    Array.from({ length: sessionCount }, (_, i) => ({
      userId,
      type: "text" as const,
      status: "ready" as const,
      interest: (i * 37) % 101,
      language: i % 3 === 0 ? "fr" : "en",
      analysedAt: new Date(Date.now() - (i % 16) * week),
    })),
  )
  .returning({ id: sessions.id });
const generations = await db
  .insert(suggestionGenerations)
  .values(seeded.map(({ id }, i) => ({ sessionId: id, tone: tones[i % tones.length]!, count: 3, status: "completed" as const })))
  .returning({ id: suggestionGenerations.id, sessionId: suggestionGenerations.sessionId, tone: suggestionGenerations.tone });
await db.insert(suggestions).values(
  generations.flatMap((generation, i) =>
    [0, 1, 2].map((rank) => ({ generationId: generation.id, sessionId: generation.sessionId, rank, tone: generation.tone, text: `reply ${rank}`, feedback: feedback[(i + rank) % feedback.length] })),
  ),
);
const profile = { bio: "Climber" };
const [openerGeneration] = await db.insert(openerGenerations).values({ userId, profile, count: 5, status: "completed" }).returning({ id: openerGenerations.id });
await db
  .insert(magicOpeners)
  .values(Array.from({ length: 20 }, (_, rank) => ({ userId, generationId: openerGeneration!.id, rank, profile, text: `opener ${rank}`, liked: [true, false, null][rank % 3] })));

const routes = { insights: "/api/v1/users/me/insights", me: "/api/v1/users/me" };
type Route = keyof typeof routes;
const times: Record<Route, number[]> = { insights: [], me: [] };
let answer = "";
for (let i = 0; i < warmup + samples; i++) {
  for (const route of ["insights", "me"] as const) {
    const started = performance.now();
    const response = await fetch(url + routes[route], { headers });
    const body = await response.text();
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`${routes[route]} answered ${response.status}: ${body.slice(0, 300)}`);
    if (i >= warmup) times[route].push(elapsed);
    if (route === "insights") answer = body;
  }
}

const line = (route: Route) => {
  const sorted = times[route].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(2)} ms, p95 ${percentile(sorted, 95).toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms`;
};
const { data } = JSON.parse(answer) as { data: { sessions: { total: number }; interest: { byWeek: unknown[] }; tones: unknown[] } };
console.log(`user with ${data.sessions.total} sessions (${data.interest.byWeek.length} weeks, ${data.tones.length} tones), ${sessionCount * 3} suggestions, 20 openers`);
console.log(`${samples} samples per route after ${warmup} warm-up, sequential, keep-alive, interleaved`);
console.log(`GET /api/v1/users/me/insights  ${line("insights")}`);
console.log(`GET /api/v1/users/me           ${line("me")}`);
