import { sql } from "drizzle-orm";
import type { Database } from "../../lib/db";
import type { AppConfig, ConfigResult } from "../../lib/env";
import { withTimeout } from "../../lib/timeout";

export type CheckResult =
  | { ok: true; latencyMs?: number }
  | { ok: false; error: string; latencyMs?: number; variables?: string[] };

export type ReadinessReport = {
  ready: boolean;
  checks: { config: CheckResult; database: CheckResult; redis: CheckResult; jobs: CheckResult };
};

/** What readiness needs from the outside world, handed in so tests can point it anywhere. */
export interface ReadinessDeps {
  config: ConfigResult;
  database?: Pick<Database, "execute">;
  redis?: { ping(): Promise<string> };
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 2_000;

async function timed(label: string, timeoutMs: number, probe: () => Promise<void>): Promise<CheckResult> {
  const started = Date.now();
  try {
    await withTimeout(probe(), timeoutMs, label);
    return { ok: true, latencyMs: Date.now() - started };
  } catch (error) {
    // Driver messages can echo connection details; report a fixed phrase plus the kind of failure.
    const reason = error instanceof Error && error.message.includes("timed out") ? "timed out" : "unreachable";
    return { ok: false, error: `${label} ${reason}`, latencyMs: Date.now() - started };
  }
}

/** QStash can deliver jobs only with a token, both signing keys and a public https base URL. */
export function checkJobQueueConfig(config: AppConfig): CheckResult {
  const missing = (["QSTASH_TOKEN", "QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY"] as const).filter(
    (name) => !config[name],
  );
  const variables: string[] = [...missing];
  if (config.ENVIRONMENT === "production" && !config.PUBLIC_BASE_URL.startsWith("https://")) {
    variables.push("PUBLIC_BASE_URL");
  }
  return variables.length === 0
    ? { ok: true }
    : { ok: false, error: "job queue is not configured", variables };
}

export async function checkReadiness(deps: ReadinessDeps): Promise<ReadinessReport> {
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const skipped = (what: string): CheckResult => ({ ok: false, error: `${what} not checked: configuration is invalid` });

  if (!deps.config.ok) {
    return {
      ready: false,
      checks: {
        config: { ok: false, error: "invalid configuration", variables: deps.config.invalidVariables },
        database: skipped("database"),
        redis: skipped("redis"),
        jobs: skipped("job queue"),
      },
    };
  }

  const { database, redis } = deps;
  const [databaseCheck, redisCheck] = await Promise.all([
    database
      ? timed("database", timeoutMs, async () => {
          await database.execute(sql`select 1`);
        })
      : Promise.resolve(skipped("database")),
    redis
      ? timed("redis", timeoutMs, async () => {
          const answer = await redis.ping();
          if (answer !== "PONG") throw new Error("unexpected ping answer");
        })
      : Promise.resolve(skipped("redis")),
  ]);
  const checks = {
    config: { ok: true } as CheckResult,
    database: databaseCheck,
    redis: redisCheck,
    jobs: checkJobQueueConfig(deps.config.config),
  };
  return { ready: Object.values(checks).every((check) => check.ok), checks };
}
