// `npm run dev`: the whole local stack on its embedded defaults, no cloud account needed.
// Postgres+pgvector (PGlite) behind a Neon HTTP endpoint, redis-server behind an Upstash
// REST adapter, the local AI upstream and QStash, then `wrangler dev` wired to all of them. Ctrl-C stops everything; data stays in .data/.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { applyMigrations } from "../scripts/db-migrate.ts";
import { startAiUpstream } from "./ai-upstream/server.ts";
import { ensureLocalClerkKeys } from "./clerk/keys.ts";
import { LOCAL_CLERK_WEBHOOK_SECRET, LOCAL_QSTASH_CREDENTIALS, localWorkerVars, readDotenv } from "./dev-vars.ts";
import { pipeLines, prefixedLog } from "./log.ts";
import { assertPortFree } from "./net.ts";
import { startNeonStandIn } from "./neon-http/server.ts";
import { startQStashStandIn } from "./qstash/server.ts";
import { startRedisServer } from "./redis-rest/redis-server.ts";
import { startRedisRestAdapter } from "./redis-rest/server.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const dataDir = join(root, ".data");
const envPort = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ports = {
  worker: envPort("LOCAL_WORKER_PORT", 8787),
  neonHttp: envPort("LOCAL_NEON_HTTP_PORT", 5480),
  postgres: envPort("LOCAL_POSTGRES_PORT", 5433),
  redis: envPort("LOCAL_REDIS_PORT", 6390),
  redisRest: envPort("LOCAL_REDIS_REST_PORT", 8079),
  aiUpstream: envPort("LOCAL_AI_UPSTREAM_PORT", 8090),
  qstash: envPort("LOCAL_QSTASH_PORT", 8070),
};
const REDIS_REST_TOKEN = "local-redis-token";

const log = prefixedLog("dev");
const cleanups: Array<() => Promise<void>> = [];
let stopping = false;

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log("stopping…");
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
    }
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

function startWrangler(vars: Record<string, string>): ChildProcess {
  // An empty value in .dev.vars means "not set" (as for the Worker's own config), so it keeps the default.
  const overrides = Object.fromEntries(
    Object.entries(readDotenv(join(root, ".dev.vars"))).filter(([, value]) => value.trim() !== ""),
  );
  const overridden = Object.keys(overrides);
  if (overridden.length > 0) log(`.dev.vars overrides: ${overridden.sort().join(", ")}`);
  // Pass only the defaults .dev.vars does not set, so .dev.vars wins whatever wrangler's precedence.
  // A real vendor key in .dev.vars sends that vendor's calls to the vendor, not the local upstream.
  for (const [keyVar, urlVar] of [
    ["OPENAI_API_KEY", "OPENAI_BASE_URL"],
    ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"],
    ["GEMINI_API_KEY", "GEMINI_BASE_URL"],
  ] as const) {
    if (keyVar in overrides && !(urlVar in overrides)) delete vars[urlVar];
  }
  const varArgs = Object.entries(vars)
    .filter(([key]) => !(key in overrides))
    .flatMap(([key, value]) => ["--var", `${key}:${value}`]);
  const child = spawn(
    join(root, "node_modules", ".bin", "wrangler"),
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(ports.worker),
      "--persist-to",
      join(dataDir, "wrangler"),
      "--show-interactive-dev-session=false",
      ...varArgs,
    ],
    {
      cwd: root,
      // Own process group: Ctrl-C is handled here, and the whole wrangler tree goes down with us.
      detached: true,
      // No network beyond loopback: skip wrangler telemetry and its Request.cf download.
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const workerLog = prefixedLog("worker");
  pipeLines(child.stdout, workerLog);
  pipeLines(child.stderr, workerLog);
  return child;
}

async function waitForReady(url: string, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline && !stopping) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

async function main(): Promise<void> {
  // Check every port first: a busy one is a clear message, not a half-started stack.
  await assertPortFree(ports.worker, "wrangler dev");
  await assertPortFree(ports.neonHttp, "neon-http");
  await assertPortFree(ports.postgres, "postgres wire protocol");
  await assertPortFree(ports.redis, "redis");
  await assertPortFree(ports.redisRest, "redis-rest");
  await assertPortFree(ports.aiUpstream, "ai-upstream");
  await assertPortFree(ports.qstash, "qstash");
  mkdirSync(dataDir, { recursive: true });

  const pgLog = prefixedLog("pg");
  const neonStandIn = await startNeonStandIn({
    httpPort: ports.neonHttp,
    wirePort: ports.postgres,
    dataDir: join(dataDir, "pg"),
    log: pgLog,
  });
  cleanups.push(() => neonStandIn.close());
  pgLog(`Neon HTTP endpoint ${neonStandIn.endpoint}; psql: psql '${neonStandIn.connectionString}'`);
  await applyMigrations({
    databaseUrl: neonStandIn.connectionString,
    fetchEndpoint: neonStandIn.endpoint,
    log: pgLog,
  });

  const redisLog = prefixedLog("redis");
  const redis = await startRedisServer({ port: ports.redis, dataDir: join(dataDir, "redis"), log: redisLog });
  cleanups.push(() => redis.stop());
  const redisRest = await startRedisRestAdapter({
    port: ports.redisRest,
    redisUrl: `redis://127.0.0.1:${ports.redis}`,
    token: REDIS_REST_TOKEN,
    log: redisLog,
  });
  cleanups.push(() => redisRest.close());
  redisLog(`Upstash REST endpoint ${redisRest.url}`);

  const aiUpstream = await startAiUpstream({ port: ports.aiUpstream, log: prefixedLog("ai") });
  cleanups.push(() => aiUpstream.close());

  // Retries ten times faster than QStash's (seconds to minutes, not minutes to hours).
  const qstash = await startQStashStandIn({
    port: ports.qstash,
    ...LOCAL_QSTASH_CREDENTIALS,
    dataDir: join(dataDir, "qstash"),
    retryDelayScale: 0.1,
    delivery: "fetch",
    log: prefixedLog("qstash"),
  });
  cleanups.push(() => qstash.close());

  const clerkKeys = await ensureLocalClerkKeys(join(dataDir, "clerk"));
  log("local Clerk key in .data/clerk — mint a session token with: npm run token -- user_local_1");

  const publicBaseUrl = `http://127.0.0.1:${ports.worker}`;
  const wrangler = startWrangler(
    localWorkerVars({
      environment: "development",
      publicBaseUrl,
      databaseUrl: neonStandIn.connectionString,
      neonHttpEndpoint: neonStandIn.endpoint,
      redisRestUrl: redisRest.url,
      redisRestToken: REDIS_REST_TOKEN,
      clerkJwtKey: clerkKeys.publicPem,
      clerkWebhookSecret: LOCAL_CLERK_WEBHOOK_SECRET,
      aiBaseUrls: aiUpstream.baseUrls,
      qstash: { url: qstash.url, ...LOCAL_QSTASH_CREDENTIALS },
    }),
  );
  cleanups.push(async () => {
    if (wrangler.exitCode !== null || wrangler.pid === undefined) return;
    const exited = new Promise<void>((resolve) => wrangler.once("exit", () => resolve()));
    process.kill(-wrangler.pid, "SIGTERM");
    const timer = setTimeout(() => wrangler.pid && process.kill(-wrangler.pid, "SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  });
  wrangler.once("exit", (code) => {
    if (stopping) return;
    log(`wrangler dev exited (code ${code}); stopping the stack`);
    void shutdown(code ?? 1);
  });

  const readyUrl = `${publicBaseUrl}/api/v1/health/ready`;
  if (await waitForReady(readyUrl, 90_000)) {
    log(`ready: ${publicBaseUrl}/api/v1/health  (Ctrl-C stops every service)`);
  } else if (!stopping) {
    log(`the Worker did not report ready within 90 s — see the [worker] lines above, or curl ${readyUrl}`);
  }
}

main().catch((error: unknown) => {
  log(`failed to start: ${error instanceof Error ? error.message : String(error)}`);
  void shutdown(1);
});
