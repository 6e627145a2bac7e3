// `npm run bench:load`: many users at once, as the app's traffic looks — list sessions, read one,
// create a text session, add a message — over a pool of keep-alive connections for a fixed time,
// with the Worker's default rate limits. Reports throughput, p50/p99 per kind and overall, the
// errors (must be 0) and the rate-limit answers (must be 0: each user stays under
// RATE_LIMIT_USER). Alone it starts and stops its own stack.
// Usage: npm run bench:load [-- --users 200 --connections 50 --seconds 30 --rate 300]
import { Agent, request as httpRequest } from "node:http";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { seedSession } from "../../local/api-client.ts";
import { formatTable, type Measure } from "./measures.ts";
import { type BenchStack, withBenchStack } from "./stack.ts";
import { count, percentile } from "./stats.ts";

type Kind = "list" | "detail" | "create" | "message";
/** The mix: mostly reads, as a phone opening the app and a chat does. */
const MIX: Kind[] = ["list", "detail", "detail", "list", "create", "detail", "message", "detail", "list", "message"];

export interface LoadOptions {
  users: number;
  connections: number;
  seconds: number;
  /** Requests started per second in all, spread evenly over the users (each under its limit). */
  rate: number;
}

export async function benchLoad(stack: BenchStack, options: LoadOptions): Promise<Measure[]> {
  const perUserPerMinute = (options.rate / options.users) * 60;
  if (perUserPerMinute > 120) throw new Error(`--rate ${options.rate} over ${options.users} users is ${perUserPerMinute.toFixed(0)} a minute each, over RATE_LIMIT_USER's 120`);
  const base = new URL(stack.url);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const send = (method: string, path: string, token: string, body?: unknown) =>
    new Promise<{ status: number; ms: number }>((resolve) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const started = performance.now();
      const req = httpRequest(
        {
          host: base.hostname,
          port: base.port,
          method,
          path,
          agent,
          headers: { Authorization: `Bearer ${token}`, ...(payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) }) },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
        },
      );
      req.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
      req.end(payload);
    });

  // Each user signs in and has one session to read and write, set up before the clock starts.
  const users: Array<{ token: string; sessions: string[] }> = [];
  for (let i = 0; i < options.users; i += 20) {
    users.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(20, options.users - i) }, async (_, j) => {
          const token = await stack.token(`user_bench_load_${Date.now()}_${i + j}`);
          return { token, sessions: [await seedSession(stack.url, token, 6)] };
        }),
      )),
    );
  }

  const samples: Record<Kind, number[]> = { list: [], detail: [], create: [], message: [] };
  const statuses = new Map<number, number>();
  const step = async (n: number) => {
    const user = users[n % users.length]!;
    // Each round over the users shifts the mix by one, so every user does every kind.
    const kind = MIX[(n + Math.floor(n / users.length)) % MIX.length]!;
    const session = user.sessions[n % user.sessions.length]!;
    const answer =
      kind === "list"
        ? await send("GET", "/api/v1/sessions?limit=20", user.token)
        : kind === "detail"
          ? await send("GET", `/api/v1/sessions/${session}`, user.token)
          : kind === "create"
            ? await send("POST", "/api/v1/sessions", user.token, { type: "text", messages: [{ sender: "match", text: "hey, how was the concert?" }] })
            : await send("POST", `/api/v1/sessions/${session}/messages`, user.token, { sender: "user", text: "amazing, the encore was the best part" });
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    if (answer.status >= 200 && answer.status < 300) samples[kind].push(answer.ms);
  };

  // Open loop at `rate` a second, never more than `connections` in flight: a server that falls
  // behind shows as lower throughput and longer latency, not as a pile of queued requests.
  const began = performance.now();
  const deadline = began + options.seconds * 1000;
  const inFlight = new Set<Promise<void>>();
  for (let n = 0; performance.now() < deadline; n++) {
    const due = began + (n * 1000) / options.rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    while (inFlight.size >= options.connections) await Promise.race(inFlight);
    const request = step(n).finally(() => inFlight.delete(request));
    inFlight.add(request);
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - began) / 1000;
  agent.destroy();

  const all = Object.values(samples).flat().sort((a, b) => a - b);
  const completed = [...statuses.values()].reduce((sum, n) => sum + n, 0);
  const limited = statuses.get(429) ?? 0;
  const errors = [...statuses].filter(([status]) => status !== 429 && (status < 200 || status >= 300)).reduce((sum, [, n]) => sum + n, 0);
  const name = `load: ${options.users} users, ${options.connections} connections, ${options.seconds} s`;
  const perKind = (Object.keys(samples) as Kind[]).map((kind) => `${kind} p50 ${percentile([...samples[kind]].sort((a, b) => a - b), 50).toFixed(1)} ms`).join(", ");
  return [
    { name: `${name}: throughput`, value: completed / elapsed, unit: "req/s", note: `mixed list/detail/create/message, offered ${options.rate}/s (${perUserPerMinute.toFixed(0)} a minute per user); ${perKind}; answers ${JSON.stringify(Object.fromEntries(statuses))}` },
    { name: `${name}: p50`, value: percentile(all, 50), unit: "ms" },
    { name: `${name}: p99`, value: percentile(all, 99), unit: "ms" },
    { name: `${name}: errors`, value: errors, unit: "count", target: { max: 0 } },
    { name: `${name}: rate-limited`, value: limited, unit: "count", target: { max: 0 } },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      users: { type: "string", default: "200" },
      connections: { type: "string", default: "50" },
      seconds: { type: "string", default: "30" },
      rate: { type: "string", default: "300" },
    },
  });
  await withBenchStack({}, async (stack) => {
    console.log(formatTable(await benchLoad(stack, { users: count(values, "users"), connections: count(values, "connections"), seconds: count(values, "seconds"), rate: count(values, "rate") })));
  });
}
