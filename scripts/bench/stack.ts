// What bench:api and bench:room share: the local stand-ins, in memory on free ports (as the
// tests start them), and the bench Worker (scripts/bench/worker) under
// wrangler's programmatic API, so each bench is one self-contained command.
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { neon, neonConfig } from "@neondatabase/serverless";
import { unstable_startWorker } from "wrangler";
import type { AiUpstream } from "../../local/ai-upstream/server.ts";
import { generateClerkKeys } from "../../local/clerk/keys.ts";
import { mintSessionToken } from "../../local/clerk/token.ts";
import { freePort } from "../../local/net.ts";
import { startEphemeralStandIns } from "../../local/stand-ins.ts";

// Loopback only: no wrangler telemetry, no Request.cf download.
process.env.WRANGLER_SEND_METRICS = "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
// No local trace collector: wrangler streams every invocation's trace to one in the same
// runtime, which took more than half of its CPU under bench:generations (see local/dev-stack.ts).
process.env.X_LOCAL_OBSERVABILITY = "false";

/**
 * What only a suggestions request's body holds at the local upstream (its JSON Schema's name in
 * OpenAI's format, the primary model's): to pace that request alone, or to find it afterwards.
 */
export const SUGGESTIONS_REQUEST = '"name":"suggestions"';

export interface BenchStack {
  /** The bench Worker's origin, e.g. http://127.0.0.1:40123 */
  url: string;
  /** A Clerk-shaped session token for `sub`, signed with this run's key. */
  token(sub: string): Promise<string>;
  /** The local AI upstream, in this process: inject faults, read what it streamed and when. */
  aiUpstream: AiUpstream;
  /** One statement against the stack's Postgres (the Worker's own database), rows as arrays. */
  sql(query: string, params?: unknown[]): Promise<unknown[][]>;
  /**
   * CPU used so far, in ms: by wrangler's dev proxy (the workerd that listens on `url` and
   * relays every request and frame; production has no such hop), by the runtime that runs the
   * Worker and its Durable Objects, and by this process (the stand-ins, Postgres among them,
   * and the bench's own client). NaN for the two workerd where /proc cannot be read (not Linux).
   */
  cpuMs(): { proxy: number; worker: number; bench: number };
}

/**
 * Starts everything, runs `bench`, and stops everything whatever happens: error, Ctrl-C, or a
 * start that fails half-way. `vars` override the local Worker vars.
 */
export async function withBenchStack(vars: Record<string, string>, bench: (stack: BenchStack) => Promise<void>): Promise<void> {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step().catch(() => {});
  };
  const interrupted = () => void stop().finally(() => process.exit(130));
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    await bench(await start(vars, stops));
  } finally {
    await stop();
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
}

async function start(vars: Record<string, string>, stops: Array<() => Promise<void>>): Promise<BenchStack> {
  const standIns = await startEphemeralStandIns({ qstashDelivery: "fetch" });
  stops.push(standIns.stop);

  const clerk = await generateClerkKeys();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const workerVars = {
    ...standIns.workerVars({
      environment: "development",
      publicBaseUrl: url,
      clerkJwtKey: clerk.publicPem,
      clerkWebhookSecret: `whsec_${randomBytes(24).toString("base64")}`,
    }),
    ...vars,
  };
  const worker = await unstable_startWorker({
    config: fileURLToPath(new URL("worker/wrangler.toml", import.meta.url)),
    bindings: Object.fromEntries(Object.entries(workerVars).map(([key, value]) => [key, { type: "plain_text", value }])),
    dev: { server: { hostname: "127.0.0.1", port }, inspector: false, persist: false, watch: false, logLevel: "warn" },
  });
  stops.push(() => worker.dispose());
  await worker.ready;
  neonConfig.fetchEndpoint = standIns.neon.endpoint;
  const database = neon(standIns.neon.connectionString, { arrayMode: true });
  return {
    url,
    token: (sub) => mintSessionToken(clerk.privateJwk, { sub, ttlSeconds: 3600 }),
    aiUpstream: standIns.aiUpstream,
    sql: (query, params = []) => database.query(query, params) as Promise<unknown[][]>,
    cpuMs: () => {
      const used = process.cpuUsage();
      return { ...workerdCpuMs(port), bench: (used.user + used.system) / 1000 };
    },
  };
}

/**
 * CPU time of the workerd processes descending from this one, from /proc (Linux): the one that
 * listens on `port` is wrangler's dev proxy, the rest run the Worker. NaN where /proc is absent.
 */
function workerdCpuMs(port: number): { proxy: number; worker: number } {
  let processes: Array<{ pid: number; parent: number; name: string; cpuMs: number }>;
  let listening: Set<string>;
  try {
    processes = readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .flatMap((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          // After "pid (name) ": state, ppid, … utime and stime are the 12th and 13th fields, in clock ticks (100 a second).
          const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
          const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
          return [{ pid: Number(pid), parent: Number(fields[1]), name, cpuMs: (Number(fields[11]) + Number(fields[12])) * 10 }];
        } catch {
          return []; // exited while listed
        }
      });
    // /proc/net/tcp rows: local address as hex ip:port, state 0A is LISTEN, the 10th column the socket's inode.
    const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
    listening = new Set(
      readFileSync("/proc/net/tcp", "utf8")
        .split("\n")
        .map((line) => line.trim().split(/\s+/))
        .filter((columns) => columns[1]?.endsWith(hexPort) && columns[3] === "0A")
        .map((columns) => `socket:[${columns[9]}]`),
    );
  } catch {
    return { proxy: NaN, worker: NaN };
  }
  const ours = new Set([process.pid]);
  // Parents are listed before their children only by chance: repeat until nothing joins.
  for (let grew = true; grew; ) {
    grew = false;
    for (const entry of processes) if (!ours.has(entry.pid) && ours.has(entry.parent)) (ours.add(entry.pid), (grew = true));
  }
  const holdsPort = (pid: number) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return listening.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  };
  const cpu = { proxy: 0, worker: 0 };
  for (const entry of processes) {
    if (entry.name !== "workerd" || !ours.has(entry.pid)) continue;
    cpu[holdsPort(entry.pid) ? "proxy" : "worker"] += entry.cpuMs;
  }
  return cpu;
}
