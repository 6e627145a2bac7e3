// What bench:api and bench:room share: the local stand-ins, in memory on free ports (as the
// tests start them), and the bench Worker (scripts/bench/worker) under
// wrangler's programmatic API, so each bench is one self-contained command.
import { randomBytes } from "node:crypto";
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
  };
}
