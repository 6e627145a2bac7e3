// `npm run bench:api`: latency of an authenticated GET /api/v1/sessions/:id (the whole app:
// Clerk JWT auth, user lookup, rate limit, the session query) against the bench Worker's bare
// route running the same single query through the same driver with no middleware (target:
// app ≤ 1.2× bare at p50 and p95). Same run, same Worker process, sequential requests,
// interleaved app/bare so any drift hits both. Alone it starts and stops its own stack.
// Usage: npm run bench:api [-- --samples 300 --warmup 30 --messages 30]
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { expectJson, seedSession } from "../../local/api-client.ts";
import { formatTable, type Measure } from "./measures.ts";
import { type BenchStack, withBenchStack } from "./stack.ts";
import { count, percentile } from "./stats.ts";

/** Requests one user sends: under RATE_LIMIT_USER's default 120 a minute, so none is refused and every one pays the limiter's round trip. */
const REQUESTS_PER_USER = 100;
/** Requests per user and side when measuring CPU: as many as the clock's 10 ms ticks need, under the limit too. */
const CPU_REQUESTS_PER_USER = 100;

export async function benchApi(stack: BenchStack, options: { samples: number; warmup: number; messages: number }): Promise<Measure[]> {
  const { url } = stack;
  type Route = { path: string; headers: Record<string, string>; sessionId: string };
  // Each user owns a session of `messages` messages; the app route reads it with the user's token.
  const newUser = async (name: string): Promise<{ app: Route; bare: Route }> => {
    const token = await stack.token(`${name}_${Date.now()}`);
    const auth = { Authorization: `Bearer ${token}` };
    const sessionId = await seedSession(url, token, options.messages);
    const me = await expectJson<{ data: { id: string } }>(await fetch(`${url}/api/v1/users/me`, { headers: auth }), 200, "GET /api/v1/users/me");
    return { app: { path: `/api/v1/sessions/${sessionId}`, headers: auth, sessionId }, bare: { path: `/__bench/sessions/${sessionId}?userId=${me.data.id}`, headers: {}, sessionId } };
  };
  const users: Array<{ app: Route; bare: Route }> = [];
  const total = options.warmup + options.samples;
  for (let i = 0; i * REQUESTS_PER_USER < total; i++) users.push(await newUser(`user_bench_api_${i}`));
  const once = async (route: Route, side: string) => {
    const started = performance.now();
    const response = await fetch(url + route.path, { headers: route.headers });
    const body = await response.text();
    const elapsed = performance.now() - started;
    // Both must have found the session: a fast 404 would flatter either side.
    if (response.status !== 200 || !body.includes(route.sessionId)) throw new Error(`${side} answered ${response.status}: ${body.slice(0, 300)}`);
    return elapsed;
  };

  const times = { app: [] as number[], bare: [] as number[] };
  for (let i = 0; i < total; i++) {
    const user = users[Math.floor(i / REQUESTS_PER_USER)]!;
    for (const side of ["app", "bare"] as const) {
      const elapsed = await once(user[side], side);
      if (i >= options.warmup) times[side].push(elapsed);
    }
  }
  // CPU per request, each side alone in a block (interleaved, the two could not be told apart):
  // where the app's extra time goes, in the runtime and in the stand-ins.
  const cpuUsers = await Promise.all([0, 1].map((i) => newUser(`user_bench_api_cpu_${i}`)));
  type Cpu = ReturnType<BenchStack["cpuMs"]>;
  const cpu: Record<"app" | "bare", Cpu> = { app: { proxy: 0, worker: 0, bench: 0 }, bare: { proxy: 0, worker: 0, bench: 0 } };
  for (const side of ["bare", "app"] as const) {
    const before = stack.cpuMs();
    for (const user of cpuUsers) for (let i = 0; i < CPU_REQUESTS_PER_USER; i++) await once(user[side], side);
    const after = stack.cpuMs();
    const n = cpuUsers.length * CPU_REQUESTS_PER_USER;
    cpu[side] = { proxy: (after.proxy - before.proxy) / n, worker: (after.worker - before.worker) / n, bench: (after.bench - before.bench) / n };
  }

  const at = (side: keyof typeof times, p: number) => percentile([...times[side]].sort((a, b) => a - b), p);
  const note = `${options.samples} sequential samples per side after ${options.warmup} warm-up, interleaved; baseline: the bench Worker's route running the same query through the same driver, nothing else`;
  return [
    ...[50, 95, 99].map((p) => ({
      name: `GET /sessions/:id p${p} (app vs bare)`,
      value: at("app", p),
      baseline: at("bare", p),
      unit: "ms" as const,
      ...(p === 99 ? {} : { target: { max: 1.2, ratio: true as const } }),
      ...(p === 50 ? { note } : {}),
    })),
    {
      name: "GET /sessions/:id Worker CPU per request (app vs bare)",
      value: cpu.app.worker,
      baseline: cpu.bare.worker,
      unit: "ms" as const,
      note:
        `${cpuUsers.length * CPU_REQUESTS_PER_USER} sequential requests per side, the runtime's CPU from /proc; per request, app vs bare: wrangler's dev proxy ${cpu.app.proxy.toFixed(2)} vs ${cpu.bare.proxy.toFixed(2)} ms, ` +
        `the stand-ins (Postgres, Redis REST) and client in the bench's process ${cpu.app.bench.toFixed(2)} vs ${cpu.bare.bench.toFixed(2)} ms`,
    },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { samples: { type: "string", default: "300" }, warmup: { type: "string", default: "30" }, messages: { type: "string", default: "30" } },
  });
  await withBenchStack({}, async (stack) => {
    console.log(formatTable(await benchApi(stack, { samples: count(values, "samples"), warmup: count(values, "warmup"), messages: count(values, "messages") })));
  });
}
