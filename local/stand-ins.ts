import { randomBytes } from "node:crypto";
import { applyMigrations } from "../scripts/db-migrate.ts";
import { startAiUpstream } from "./ai-upstream/server.ts";
import { freePort } from "./net.ts";
import { startNeonStandIn } from "./neon-http/server.ts";
import { startQStashStandIn } from "./qstash/server.ts";
import { startRedisServer } from "./redis-rest/redis-server.ts";
import { startRedisRestAdapter } from "./redis-rest/server.ts";

/**
 * The stand-ins the tests and benches use: in memory, on free ports, migrated, silent. (The
 * dev stack starts the same servers on fixed ports with data under .data/; see dev.ts.)
 * On a failed start, whatever did start is stopped again.
 */
export async function startEphemeralStandIns(options: { qstashDelivery: "fetch" | "pull" }) {
  const quiet = () => {};
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step().catch(() => {});
  };
  try {
    const neon = await startNeonStandIn({ httpPort: 0, log: quiet });
    stops.push(() => neon.close());
    await applyMigrations({ databaseUrl: neon.connectionString, fetchEndpoint: neon.endpoint });

    const redis = await startRedisServer({ port: await freePort(), log: quiet });
    stops.push(() => redis.stop());
    const redisToken = randomBytes(16).toString("hex");
    const redisRest = await startRedisRestAdapter({ port: 0, redisUrl: `redis://127.0.0.1:${redis.port}`, token: redisToken, log: quiet });
    stops.push(() => redisRest.close());

    const aiUpstream = await startAiUpstream({ port: 0, log: quiet });
    stops.push(() => aiUpstream.close());

    const qstashCredentials = {
      token: randomBytes(16).toString("hex"),
      currentSigningKey: `sig_${randomBytes(16).toString("hex")}`,
      nextSigningKey: `sig_${randomBytes(16).toString("hex")}`,
    };
    // Retries a hundred times faster than QStash: seconds, not minutes, before a failure callback.
    const qstashServer = await startQStashStandIn({ port: 0, ...qstashCredentials, retryDelayScale: 0.01, delivery: options.qstashDelivery, log: quiet });
    stops.push(() => qstashServer.close());

    return {
      neon,
      redis,
      redisRest: { url: redisRest.url, token: redisToken },
      aiUpstream,
      qstash: { url: qstashServer.url, ...qstashCredentials },
      /** Stops everything started here; extra steps registered with `onStop` run first. */
      onStop: (step: () => Promise<void>) => void stops.push(step),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
