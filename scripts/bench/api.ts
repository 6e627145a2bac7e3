// `npm run bench:api`: latency of an authenticated GET /api/v1/sessions/:id (the whole app:
// Clerk JWT auth, user lookup, rate limit, the session query) against the bench Worker's bare
// route running the same single query through the same driver with no middleware (SPEC §10:
// app ≤ 1.5× bare at p50 and p95). Same run, same Worker process, sequential requests,
// interleaved app/bare so any drift hits both. Starts and stops its own stack.
// Usage: npm run bench:api [-- --samples 300 --warmup 30 --messages 30]
import { parseArgs } from "node:util";
import { expectJson, seedSession } from "../../local/api-client.ts";
import { withBenchStack } from "./stack.ts";
import { count, percentile } from "./stats.ts";

const { values } = parseArgs({
  options: {
    samples: { type: "string", default: "300" },
    warmup: { type: "string", default: "30" },
    messages: { type: "string", default: "30" },
  },
});
const samples = count(values, "samples");
const warmup = count(values, "warmup");
const messages = count(values, "messages");
// One user sends every request: its limit is raised out of reach, so none is refused while the
// limiter still does its Redis round trip on each app request.
const RATE_LIMIT_USER = "1000000";

await withBenchStack({ RATE_LIMIT_USER }, async ({ url, token: mint }) => {
  const token = await mint(`user_bench_${Date.now()}`);
  const auth = { Authorization: `Bearer ${token}` };
  const sessionId = await seedSession(url, token, messages);
  const me = await expectJson<{ data: { id: string } }>(await fetch(`${url}/api/v1/users/me`, { headers: auth }), 200, "GET /api/v1/users/me");

  const routes = {
    app: { path: `/api/v1/sessions/${sessionId}`, headers: auth },
    bare: { path: `/__bench/sessions/${sessionId}?userId=${me.data.id}`, headers: {} },
  };
  const once = async (route: keyof typeof routes) => {
    const started = performance.now();
    const response = await fetch(url + routes[route].path, { headers: routes[route].headers });
    const body = await response.text();
    const elapsed = performance.now() - started;
    // Both must have found the session: a fast 404 would flatter either side.
    if (response.status !== 200 || !body.includes(sessionId)) throw new Error(`${route} answered ${response.status}: ${body.slice(0, 300)}`);
    return elapsed;
  };

  const times: Record<keyof typeof routes, number[]> = { app: [], bare: [] };
  for (let i = 0; i < warmup + samples; i++) {
    for (const route of ["app", "bare"] as const) {
      const elapsed = await once(route);
      if (i >= warmup) times[route].push(elapsed);
    }
  }

  const stats = (route: keyof typeof routes) => {
    const sorted = times[route].sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
  };
  const app = stats("app");
  const bare = stats("bare");
  const line = (s: typeof app) => `p50 ${s.p50.toFixed(2)} ms, p95 ${s.p95.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms`;
  console.log(`GET session with ${messages} messages: ${samples} samples per route after ${warmup} warm-up, sequential, interleaved app/bare`);
  console.log(`(bench Worker runs with RATE_LIMIT_USER=${RATE_LIMIT_USER}: one user, never limited, limiter still called)`);
  console.log(`app   GET /api/v1/sessions/:id (auth, user lookup, rate limit, query)  ${line(app)}`);
  console.log(`bare  GET /__bench/sessions/:id (same query, same driver, nothing else)  ${line(bare)}`);
  const ratio = (p: "p50" | "p95") => app[p] / bare[p];
  const verdict = ratio("p50") <= 1.5 && ratio("p95") <= 1.5 ? "within" : "OVER";
  console.log(`app/bare p50 ${ratio("p50").toFixed(2)}×, p95 ${ratio("p95").toFixed(2)}× — ${verdict} the 1.5× target`);
});
