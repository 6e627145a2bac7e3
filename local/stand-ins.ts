import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { applyMigrations } from "../scripts/db-migrate.ts";
import { type AiPacing, startAiUpstream } from "./ai-upstream/server.ts";
import type { Outage } from "./http.ts";
import { type LocalQStash, localWorkerVars } from "./dev-vars.ts";
import { startExpoStandIn } from "./expo/server.ts";
import { assertPortFree, freePort } from "./net.ts";
import { startNeonStandIn } from "./neon-http/server.ts";
import { startQStashStandIn } from "./qstash/server.ts";
import { startRedisServer } from "./redis-rest/redis-server.ts";
import { startRedisRestAdapter } from "./redis-rest/server.ts";

export interface StandInPorts {
  neonHttp: number;
  /** Postgres wire protocol (psql, drizzle-kit studio): only served when given. */
  postgres: number;
  redis: number;
  redisRest: number;
  aiUpstream: number;
  qstash: number;
  expo: number;
}

/** A line logger per service; the stand-ins name theirs "pg", "redis", "ai", "qstash" and "expo". */
export type ServiceLog = (service: string) => (line: string) => void;

export interface StandInOptions {
  qstashDelivery: "fetch" | "pull";
  /** Fixed ports; each one left out is chosen by the OS. */
  ports?: Partial<StandInPorts>;
  /** Data persists under pg/, redis/ and qstash/ here; without it everything is in memory. */
  dataDir?: string;
  /** Fixed credentials (the dev stack's documented ones); random ones without. */
  credentials?: { redisToken: string; qstash: Omit<LocalQStash, "url"> };
  /** Multiplies QStash's retry waits. */
  retryDelayScale: number;
  /** How the AI upstream paces answers a request asks nothing of; instant without. */
  aiPacing?: AiPacing;
  log?: ServiceLog;
}

const quiet: ServiceLog = () => () => {};
const random = (bytes: number) => randomBytes(bytes).toString("hex");

/**
 * Postgres (PGlite behind the Neon HTTP endpoint, migrated), redis-server behind the Upstash
 * REST adapter, the AI upstream, QStash and Expo's push service: what the Worker talks to, wherever it runs (the
 * test pool, a bench Worker, `wrangler dev`). A fixed port that is busy stops the start before
 * anything runs; on any failed start, whatever did start is stopped again.
 */
export async function startStandIns(options: StandInOptions) {
  const log = options.log ?? quiet;
  const ports = options.ports ?? {};
  const dataDir = (name: string) => (options.dataDir === undefined ? undefined : join(options.dataDir, name));
  const roles: Record<keyof StandInPorts, string> = {
    neonHttp: "neon-http",
    postgres: "postgres wire protocol",
    redis: "redis",
    redisRest: "redis-rest",
    aiUpstream: "ai-upstream",
    qstash: "qstash",
    expo: "expo",
  };
  for (const [name, role] of Object.entries(roles) as Array<[keyof StandInPorts, string]>) {
    const port = ports[name];
    if (port !== undefined) await assertPortFree(port, role);
  }

  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step().catch(() => {});
  };
  try {
    const pgLog = log("pg");
    const neon = await startNeonStandIn({ httpPort: ports.neonHttp ?? 0, wirePort: ports.postgres, dataDir: dataDir("pg"), log: pgLog });
    stops.push(() => neon.close());
    pgLog(`Neon HTTP endpoint ${neon.endpoint}${neon.wirePort === undefined ? "" : `; psql: psql '${neon.connectionString}'`}`);
    await applyMigrations({ databaseUrl: neon.connectionString, fetchEndpoint: neon.endpoint, log: pgLog });

    const redisLog = log("redis");
    const redis = await startRedisServer({ port: ports.redis ?? (await freePort()), dataDir: dataDir("redis"), log: redisLog });
    stops.push(() => redis.stop());
    const redisToken = options.credentials?.redisToken ?? random(16);
    const redisRest = await startRedisRestAdapter({ port: ports.redisRest ?? 0, redisUrl: `redis://127.0.0.1:${redis.port}`, token: redisToken, log: redisLog });
    stops.push(() => redisRest.close());
    redisLog(`Upstash REST endpoint ${redisRest.url}`);

    const aiUpstream = await startAiUpstream({ port: ports.aiUpstream ?? 0, pacing: options.aiPacing, log: log("ai") });
    stops.push(() => aiUpstream.close());

    const qstashCredentials = options.credentials?.qstash ?? {
      token: random(16),
      currentSigningKey: `sig_${random(16)}`,
      nextSigningKey: `sig_${random(16)}`,
    };
    const qstashServer = await startQStashStandIn({
      port: ports.qstash ?? 0,
      ...qstashCredentials,
      dataDir: dataDir("qstash"),
      retryDelayScale: options.retryDelayScale,
      delivery: options.qstashDelivery,
      log: log("qstash"),
    });
    stops.push(() => qstashServer.close());
    const qstash = { url: qstashServer.url, ...qstashCredentials };

    const expo = await startExpoStandIn({ port: ports.expo ?? 0, log: log("expo") });
    stops.push(() => expo.close());

    return {
      neon,
      redis,
      redisRest: { url: redisRest.url, token: redisToken },
      aiUpstream,
      qstash,
      expo,
      /** Each dependency down and back up, its data kept (Redis, a cache, restarts empty unless persisted). */
      outages: {
        postgres: neon.outage,
        redis: { stop: () => redis.stop(), start: () => redis.start() },
        "redis-rest": redisRest.outage,
        qstash: qstashServer.outage,
        openai: aiUpstream.outage("openai"),
        anthropic: aiUpstream.outage("anthropic"),
        gemini: aiUpstream.outage("gemini"),
      } satisfies Record<Dependency, Outage>,
      /** The Worker's variables pointing at these stand-ins (see localWorkerVars). */
      workerVars: (worker: { environment: "development" | "test"; publicBaseUrl: string; clerkJwtKey: string; clerkWebhookSecret: string }) =>
        localWorkerVars({
          ...worker,
          databaseUrl: neon.connectionString,
          neonHttpEndpoint: neon.endpoint,
          redisRestUrl: redisRest.url,
          redisRestToken: redisToken,
          aiBaseUrls: aiUpstream.baseUrls,
          qstash,
          expoPushUrl: expo.url,
        }),
      /** Stops everything started here; extra steps registered with `onStop` run first. */
      onStop: (step: () => Promise<void>) => void stops.push(step),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The dependencies a test can take down and bring back under live work (resilience suite). */
export type Dependency = "postgres" | "redis" | "redis-rest" | "qstash" | "openai" | "anthropic" | "gemini";

export type StandIns = Awaited<ReturnType<typeof startStandIns>>;

/**
 * The stand-ins the tests and benches use: in memory, on free ports, silent, the AI upstream
 * instant unless a request asks for delays, QStash retrying a hundred times faster than QStash
 * (seconds, not minutes, before a failure callback).
 */
export function startEphemeralStandIns(options: { qstashDelivery: "fetch" | "pull" }): Promise<StandIns> {
  return startStandIns({ qstashDelivery: options.qstashDelivery, retryDelayScale: 0.01 });
}
