// `npm run dev`: the whole local stack on its embedded defaults, no cloud account needed.
// Postgres+pgvector (PGlite) behind a Neon HTTP endpoint, redis-server behind an Upstash
// REST adapter, the local AI upstream, QStash and Expo push, then `wrangler dev` wired to all of them
// (dev-stack.ts). Ctrl-C stops everything; data stays in .data/.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEV_AI_PACING, type DevStack, startDevStack } from "./dev-stack.ts";
import { prefixedLog } from "./log.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const envPort = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
/** A delay in ms from the environment; anything but a whole number of ms ≥ 0 stops the start. */
function envMs(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number of milliseconds (0 or more), not ${JSON.stringify(raw)}`);
  return value;
}
const READY_TIMEOUT_MS = 90_000;

const log = prefixedLog("dev");
// One coloured prefix per service, made in the order the services start.
const serviceLogs = new Map<string, (line: string) => void>([["dev", log]]);
const serviceLog = (service: string) => {
  if (!serviceLogs.has(service)) serviceLogs.set(service, prefixedLog(service));
  return serviceLogs.get(service)!;
};

const aborted = new AbortController();
let stopping = false;
// Inside an async function: a bad setting rejects the start like any other failure.
const started = (async () =>
  startDevStack({
    ports: {
      worker: envPort("LOCAL_WORKER_PORT", 8787),
      neonHttp: envPort("LOCAL_NEON_HTTP_PORT", 5480),
      postgres: envPort("LOCAL_POSTGRES_PORT", 5433),
      redis: envPort("LOCAL_REDIS_PORT", 6390),
      redisRest: envPort("LOCAL_REDIS_REST_PORT", 8079),
      aiUpstream: envPort("LOCAL_AI_UPSTREAM_PORT", 8090),
      qstash: envPort("LOCAL_QSTASH_PORT", 8070),
      expo: envPort("LOCAL_EXPO_PORT", 8060),
    },
    dataDir: join(root, ".data"),
    dotDevVars: true,
    aiPacing: {
      firstTokenMs: envMs("LOCAL_AI_FIRST_TOKEN_MS", DEV_AI_PACING.firstTokenMs),
      tokenMs: envMs("LOCAL_AI_TOKEN_MS", DEV_AI_PACING.tokenMs),
    },
    log: serviceLog,
    signal: aborted.signal,
  }))();

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log("stopping…");
    // A start in progress stops what it started and rejects; a finished one is stopped here.
    aborted.abort();
    await started.then((stack) => stack.stop(), () => {});
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

let stack: DevStack | undefined;
try {
  stack = await started;
} catch (error) {
  if (!stopping) {
    log(`failed to start: ${error instanceof Error ? error.message : String(error)}`);
    await shutdown(1);
  }
}
if (stack && !stopping) {
  const { url, wrangler } = stack;
  void wrangler.exited.then((code) => {
    if (stopping) return;
    log(`wrangler dev exited (code ${code}); stopping the stack`);
    void shutdown(code ?? 1);
  });
  if (await stack.ready(READY_TIMEOUT_MS)) {
    await Promise.all([syncSchedules(stack), loadTips(stack)]);
    log(`ready: ${url}/api/v1/health  (Ctrl-C stops every service)`);
  } else if (!stopping) {
    log(`the Worker did not report ready within ${READY_TIMEOUT_MS / 1000} s — see the [worker] lines above, or curl ${url}/api/v1/health/ready`);
  }
}

/**
 * The QStash schedules (the run sweeps …) in the local QStash, as the deploy steps do in
 * production. Asynchronous: the local QStash answering it runs in this very process.
 */
async function syncSchedules({ url, qstash }: DevStack): Promise<void> {
  await runScript("schedules-sync.ts", { PUBLIC_BASE_URL: url, QSTASH_URL: qstash.url, QSTASH_TOKEN: qstash.token }, serviceLog("qstash"));
}

/** The daily tips from content/tips into the local Postgres (idempotent: a restart changes nothing). */
async function loadTips({ database }: DevStack): Promise<void> {
  await runScript("tips-load.ts", { DATABASE_URL: database.url, NEON_HTTP_ENDPOINT: database.neonHttpEndpoint }, serviceLog("pg"));
}

/** Runs scripts/<name> under tsx with `env` over ours, and logs its output (a failure is logged, not fatal). */
async function runScript(name: string, env: Record<string, string>, logLine: (line: string) => void): Promise<void> {
  const run = promisify(execFile)(join(root, "node_modules", ".bin", "tsx"), [join(root, "scripts", name)], { cwd: root, env: { ...process.env, ...env } });
  const { stdout, stderr } = await run.catch((error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? "", stderr: error.stderr ?? String(error) }));
  for (const line of `${stdout}${stderr}`.split("\n").filter(Boolean)) logLine(line);
}
