import { randomBytes } from "node:crypto";
import type { TestProject } from "vitest/node";
import { fileURLToPath } from "node:url";
import { generateClerkKeys } from "../local/clerk/keys.ts";
import { readDotenv } from "../local/dev-vars.ts";
import { startEphemeralStandIns } from "../local/stand-ins.ts";
import { startControlServer } from "./control-server.ts";
import { startDroppingProxy } from "./dropping-proxy.ts";

/** Starts the same stand-ins as `npm run dev`, on free ports, with throwaway data. */
export default async function setup(project: TestProject) {
  // The Worker under test has no listening port: QStash deliveries are pulled (test/jobs.ts).
  const standIns = await startEphemeralStandIns({ qstashDelivery: "pull" });
  try {
    const { neon, redis, aiUpstream, qstash, expo } = standIns;
    const clerk = await generateClerkKeys();
    const webhookSecret = `whsec_${randomBytes(24).toString("base64")}`;

    // The same database behind a door that loses requests on demand (see src/lib/db.test.ts).
    const droppingNeon = await startDroppingProxy(neon.endpoint);
    standIns.onStop(() => droppingNeon.close());

    const controlToken = randomBytes(16).toString("hex");
    const control = await startControlServer(
      {
        "redis/stop": () => redis.stop(),
        "redis/start": () => redis.start(),
        "neon/drop-next": async () => droppingNeon.dropNext(),
      },
      controlToken,
    );
    standIns.onStop(() => control.close());

    // wrangler also feeds a developer's .dev.vars to the test Worker. Every documented variable
    // is blanked first (empty = unset) so a real key there never reaches a test.
    const documented = readDotenv(fileURLToPath(new URL("../.dev.vars.example", import.meta.url)));
    const blank = Object.fromEntries(Object.keys(documented).map((key) => [key, ""]));
    project.provide("workerVars", {
      ...blank,
      ...standIns.workerVars({
        environment: "test",
        publicBaseUrl: "http://127.0.0.1:8787",
        clerkJwtKey: clerk.publicPem,
        clerkWebhookSecret: webhookSecret,
      }),
      // Few retries keep the failure-callback tests short; the logic is the same.
      JOB_RETRIES: "1",
      // A short lease keeps the take-over and sweep tests fast (renewed every second); the logic is the same.
      JOB_LEASE_SECONDS: "3",
      // A short authentication deadline keeps the socket-timeout test fast; the logic is the same.
      WS_AUTH_TIMEOUT_MS: "1000",
      // A small per-user socket cap keeps the cap test small; the logic is the same.
      WS_MAX_SOCKETS_PER_USER: "4",
      TEST_AI_UPSTREAM_URL: aiUpstream.url,
      TEST_QSTASH_URL: qstash.url,
      TEST_EXPO_URL: expo.origin,
      TEST_CLERK_PRIVATE_JWK: JSON.stringify(clerk.privateJwk),
      TEST_CONTROL_URL: control.url,
      TEST_CONTROL_TOKEN: controlToken,
      TEST_DROPPING_NEON_ENDPOINT: droppingNeon.url,
    });
  } catch (error) {
    await standIns.stop();
    throw error;
  }
  return standIns.stop;
}
