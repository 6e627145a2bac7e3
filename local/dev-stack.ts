// The whole local stack as one function: the stand-ins (stand-ins.ts) and the real `wrangler dev`
// CLI wired to them. `npm run dev` (dev.ts) starts it on fixed ports with data under .data/;
// the `dev` test project (test/dev/) starts it on free ports with throwaway data, so tests see
// what only `wrangler dev` shows.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AiPacing, AiUpstream } from "./ai-upstream/server.ts";
import { ensureLocalClerkKeys, generateClerkKeys } from "./clerk/keys.ts";
import { mintSessionToken } from "./clerk/token.ts";
import { LOCAL_CLERK_WEBHOOK_SECRET, LOCAL_QSTASH_CREDENTIALS, type LocalQStash, readDotenv } from "./dev-vars.ts";
import { pipeLines } from "./log.ts";
import { assertPortFree, freePort } from "./net.ts";
import type { Outage } from "./http.ts";
import { type Dependency, type ServiceLog, type StandInPorts, startStandIns } from "./stand-ins.ts";

export interface DevStackPorts extends StandInPorts {
  worker: number;
}

export interface DevStackOptions {
  /** Fixed ports (`npm run dev`); each one left out is chosen by the OS, and Postgres's wire port is then not served. */
  ports?: Partial<DevStackPorts>;
  /** Data persists here (pg/, redis/, qstash/, clerk/, wrangler/); without it everything is throwaway. */
  dataDir?: string;
  /** Worker vars over the local defaults. */
  vars?: Record<string, string>;
  /**
   * Let wrangler read the project's `.dev.vars`, whose non-empty values then win over every
   * default (`npm run dev`). Without it wrangler reads no `.dev.vars` or `.env`, so a
   * developer's keys never reach a test.
   */
  dotDevVars?: boolean;
  /** How the local AI upstream paces its answers; by default like a real model (DEV_AI_PACING). */
  aiPacing?: AiPacing;
  /** The local QStash's retry delays as a share of QStash's own (0.1 by default: ten times faster). */
  qstashRetryDelayScale?: number;
  log?: ServiceLog;
  /** How long wrangler may take to serve its first request (bundling, workerd start). */
  startTimeoutMs?: number;
  /** Another wrangler executable than the project's (tests compare wrangler versions). */
  wranglerBin?: string;
  /** Aborting stops whatever started and rejects the start. */
  signal?: AbortSignal;
}

export interface DevStack {
  /** The Worker's origin, e.g. http://127.0.0.1:8787 */
  url: string;
  /** A Clerk-shaped session token for `sub`, signed with this stack's key, valid for an hour. */
  token(sub: string): Promise<string>;
  /** The local AI upstream, in this process: inject faults, read what it streamed and when. */
  aiUpstream: AiUpstream;
  qstash: LocalQStash;
  /** The local Expo push service: `url` is EXPO_PUSH_URL, `origin` serves /__messages. */
  expo: { url: string; origin: string };
  redis: { port: number; running(): boolean };
  /** Each dependency taken down and brought back, as an outage the Worker must ride out. */
  outages: Record<Dependency, Outage>;
  /** Postgres as the Worker reaches it (for loaders such as `npm run tips:load`). */
  database: { url: string; neonHttpEndpoint: string };
  wrangler: {
    /** wrangler's pid, which is also its process group (workerd included). */
    pid: number;
    running(): boolean;
    /** Resolves with wrangler's exit code (null when killed by a signal). */
    exited: Promise<number | null>;
    /** wrangler's latest output lines, for error messages. */
    output(): string[];
    /**
     * Kills wrangler's whole process group at once, as a crash would (a request in flight just
     * stops), then starts it again on the same port and state, and waits until it serves.
     */
    crashAndRestart(): Promise<void>;
  };
  /** Polls `GET /api/v1/health/ready` until it answers 200; false if it does not within `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  /** Stops wrangler's process group and every stand-in, and removes throwaway data. Idempotent. */
  stop(): Promise<void>;
}

/**
 * A real model's pace, so that someone watching a generation sees tokens arrive and can cancel
 * one mid-way: the first token after 400 ms, then one every 30 ms.
 */
export const DEV_AI_PACING: AiPacing = { firstTokenMs: 400, tokenMs: 30 };

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "node_modules", ".bin");
const REDIS_REST_TOKEN = "local-redis-token";
const DEFAULT_START_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_LINES = 80;
const quiet: ServiceLog = () => () => {};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * wrangler prints a line per request with its path, and an upload's path is its image key (user
 * id included). The Worker's own log names routes, never keys; the dev stack's output does the same.
 */
export function withoutUploadKeys(line: string): string {
  return line.replace(/(\/api\/v1\/uploads\/)[^\s?]+/g, "$1:key");
}

export async function startDevStack(options: DevStackOptions = {}): Promise<DevStack> {
  const log = options.log ?? quiet;
  const { signal } = options;
  const ports = options.ports ?? {};
  // Every fixed port first: a busy one is a clear message, not a half-started stack.
  if (ports.worker !== undefined) await assertPortFree(ports.worker, "wrangler dev");

  const stops: Array<() => Promise<void>> = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      for (const step of stops.splice(0).reverse()) await step().catch((error: unknown) => log("dev")(`cleanup failed: ${String(error)}`));
    })());
  try {
    signal?.throwIfAborted();
    const standIns = await startStandIns({
      qstashDelivery: "fetch",
      ports,
      dataDir: options.dataDir,
      // The dev stack's fixed throwaway credentials, the same on every start.
      credentials: { redisToken: REDIS_REST_TOKEN, qstash: LOCAL_QSTASH_CREDENTIALS },
      // Retries ten times faster than QStash's (seconds to minutes, not minutes to hours).
      retryDelayScale: options.qstashRetryDelayScale ?? 0.1,
      aiPacing: options.aiPacing ?? DEV_AI_PACING,
      log,
    });
    stops.push(standIns.stop);
    signal?.throwIfAborted();

    const scratch = mkdtempSync(join(tmpdir(), "charisma-dev-stack-"));
    stops.push(async () => rmSync(scratch, { recursive: true, force: true }));
    const clerk = options.dataDir === undefined ? await generateClerkKeys() : await ensureLocalClerkKeys(join(options.dataDir, "clerk"));
    if (options.dataDir !== undefined) {
      log("dev")(`local Clerk key in ${join(options.dataDir, "clerk")} — mint a session token with: npm run token -- user_local_1`);
    }

    const workerPort = ports.worker ?? (await freePort());
    const url = `http://127.0.0.1:${workerPort}`;
    const vars = {
      ...standIns.workerVars({
        environment: "development",
        publicBaseUrl: url,
        clerkJwtKey: clerk.publicPem,
        clerkWebhookSecret: LOCAL_CLERK_WEBHOOK_SECRET,
      }),
      ...options.vars,
    };
    const persistTo = options.dataDir === undefined ? join(scratch, "wrangler") : join(options.dataDir, "wrangler");
    mkdirSync(persistTo, { recursive: true });
    const envFile = options.dotDevVars ? undefined : emptyFile(scratch);
    const output: string[] = [];
    const workerLog = log("worker");
    const record = (raw: string) => {
      const line = withoutUploadKeys(raw);
      output.push(line);
      if (output.length > OUTPUT_LINES) output.shift();
      workerLog(line);
    };
    /** Starts wrangler dev and waits until it serves; stop() takes its whole process group down. */
    const launch = async () => {
      const child = spawnWrangler({ port: workerPort, persistTo, vars, envFile, bin: options.wranglerBin ?? join(bin, "wrangler"), log: log("dev") });
      pipeLines(child.stdout, record);
      pipeLines(child.stderr, record);
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      const pid = child.pid;
      if (pid === undefined) throw new Error("wrangler dev could not be started");
      // Should this process end without stop() (a test runner killing its worker), wrangler goes too.
      const killOnExit = () => signalGroup(pid, "SIGKILL");
      process.on("exit", killOnExit);
      stops.push(async () => {
        await stopProcessGroup(pid, exited);
        process.off("exit", killOnExit);
      });
      await waitUntil(
        async () => (await probe(`${url}/api/v1/health`)) === 200,
        { timeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS, exited, signal },
      ).catch((error: unknown) => {
        if (signal?.aborted) throw error;
        // Without a log nobody has seen wrangler's output yet: it says why.
        const seen = options.log !== undefined;
        throw new Error(`wrangler dev on ${url}: ${error instanceof Error ? error.message : String(error)}${seen ? "" : `\n${output.join("\n")}`}`);
      });
      return { pid, exited, running: () => child.exitCode === null && child.signalCode === null };
    };
    let current = await launch();

    return {
      url,
      token: (sub) => mintSessionToken(clerk.privateJwk, { sub, ttlSeconds: 3600 }),
      aiUpstream: standIns.aiUpstream,
      qstash: standIns.qstash,
      expo: { url: standIns.expo.url, origin: standIns.expo.origin },
      redis: standIns.redis,
      outages: standIns.outages,
      database: { url: standIns.neon.connectionString, neonHttpEndpoint: standIns.neon.endpoint },
      wrangler: {
        get pid() {
          return current.pid;
        },
        running: () => current.running(),
        get exited() {
          return current.exited;
        },
        output: () => [...output],
        async crashAndRestart() {
          signalGroup(current.pid, "SIGKILL");
          await current.exited;
          current = await launch();
        },
      },
      ready: (timeoutMs) =>
        waitUntil(async () => (await probe(`${url}/api/v1/health/ready`)) === 200, { timeoutMs, exited: current.exited }).then(
          () => true,
          () => false,
        ),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * `wrangler dev` exactly as a developer runs it, in its own process group: the group takes
 * workerd down with it, and Ctrl-C in a terminal reaches only the orchestrator.
 */
function spawnWrangler(options: {
  port: number;
  persistTo: string;
  vars: Record<string, string>;
  envFile: string | undefined;
  bin: string;
  log: (line: string) => void;
}): ChildProcess {
  let vars = options.vars;
  if (options.envFile === undefined) {
    // An empty value in .dev.vars means "not set" (as for the Worker's own config), so it keeps the default.
    const overrides = Object.fromEntries(
      Object.entries(readDotenv(join(root, ".dev.vars"))).filter(([, value]) => value.trim() !== ""),
    );
    const overridden = Object.keys(overrides);
    if (overridden.length > 0) options.log(`.dev.vars overrides: ${overridden.sort().join(", ")}`);
    // Pass only the defaults .dev.vars does not set, so .dev.vars wins whatever wrangler's precedence.
    // A real vendor key in .dev.vars sends that vendor's calls to the vendor, not the local upstream;
    // a real Clerk key is checked against its own issuer and key id, not the local key's.
    const dropped = new Set(Object.keys(overrides));
    for (const [keyVar, localVars] of [
      ["OPENAI_API_KEY", ["OPENAI_BASE_URL"]],
      ["ANTHROPIC_API_KEY", ["ANTHROPIC_BASE_URL"]],
      ["GEMINI_API_KEY", ["GEMINI_BASE_URL"]],
      ["CLERK_JWT_KEY", ["CLERK_ISSUER", "CLERK_JWT_KEY_ID"]],
      ["CLERK_SECRET_KEY", ["CLERK_ISSUER", "CLERK_JWT_KEY_ID"]],
    ] as const) {
      if (keyVar in overrides) for (const localVar of localVars) dropped.add(localVar);
    }
    vars = Object.fromEntries(Object.entries(vars).filter(([key]) => !dropped.has(key)));
  }
  return spawn(
    options.bin,
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(options.port),
      "--persist-to",
      options.persistTo,
      "--show-interactive-dev-session=false",
      ...(options.envFile === undefined ? [] : ["--env-file", options.envFile]),
      ...Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]),
    ],
    {
      cwd: root,
      detached: true,
      env: {
        ...process.env,
        // As under `npm run`: wrangler's `#!/usr/bin/env node` finds the project's Node 22,
        // whoever started this (a test runner, a script run with that Node directly).
        PATH: [bin, process.env.PATH].filter(Boolean).join(delimiter),
        // No network beyond loopback: skip wrangler telemetry and its Request.cf download.
        WRANGLER_SEND_METRICS: "false",
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        // No local trace collector (wrangler's dev-only explorer): it streams a trace of every
        // invocation to a Worker in the same runtime. Under 200 generations at once that cost
        // more than half the runtime's CPU (36 s against 15 s), and every trace cut short by a
        // finished request printed an ERROR line. Our own logger writes a line per request.
        X_LOCAL_OBSERVABILITY: "false",
        FORCE_COLOR: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
}

function emptyFile(dir: string): string {
  const path = join(dir, "empty.env");
  writeFileSync(path, "");
  return path;
}

/** The status of GET `url`, or undefined when nothing answers (yet). */
async function probe(url: string): Promise<number | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return undefined;
  }
}

/** Polls `check` every half second; rejects when wrangler exits, the signal aborts, or time runs out. */
async function waitUntil(
  check: () => Promise<boolean>,
  options: { timeoutMs: number; exited: Promise<number | null>; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let exitCode: number | null | undefined;
  void options.exited.then((code) => (exitCode = code));
  for (;;) {
    options.signal?.throwIfAborted();
    if (exitCode !== undefined) throw new Error(`exited (code ${exitCode}) before it served a request`);
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`no answer within ${Math.round(options.timeoutMs / 1000)} s`);
    await sleep(500);
  }
}

/** SIGTERM to the whole group, SIGKILL to whatever is left after a grace period. */
async function stopProcessGroup(pgid: number, exited: Promise<number | null>): Promise<void> {
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  signalGroup(pgid, "SIGTERM");
  const deadline = Date.now() + STOP_GRACE_MS;
  while (alive() && Date.now() < deadline) await sleep(50);
  if (alive()) signalGroup(pgid, "SIGKILL");
  await exited;
  // workerd outlives wrangler by a moment; a SIGKILLed process is gone once the kernel reaps it.
  const reaped = Date.now() + 2_000;
  while (alive() && Date.now() < reaped) await sleep(50);
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is already gone.
  }
}
