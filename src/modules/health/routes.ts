import { createRoute, z } from "@hono/zod-openapi";
import { loadConfig } from "../../lib/env";
import { ok } from "../../lib/envelope";
import { AppError } from "../../lib/errors";
import { createRouter, errorResponses, jsonResponse } from "../../lib/openapi";
import { applyRateLimit } from "../../lib/rate-limit";
import { createRedis } from "../../lib/redis";
import { databaseFor } from "../../lib/services";
import { type CheckResult, checkReadiness } from "./service";

const checkSchema = z.object({
  ok: z.boolean(),
  error: z.string().optional(),
  latencyMs: z.number().optional(),
});

const livenessRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["health"],
  summary: "Liveness: the Worker runs",
  responses: {
    200: jsonResponse(
      z.object({ status: z.literal("ok"), timestamp: z.string(), environment: z.string(), version: z.string() }),
      "Alive",
    ),
  },
});

const readinessRoute = createRoute({
  method: "get",
  path: "/ready",
  tags: ["health"],
  summary: "Readiness: configuration, Postgres, Redis and the job queue configuration",
  responses: {
    200: jsonResponse(
      z.object({
        status: z.literal("ready"),
        checks: z.object({ config: checkSchema, database: checkSchema, redis: checkSchema, jobs: checkSchema }),
      }),
      "Every dependency answers",
    ),
    ...errorResponses("SERVICE_UNAVAILABLE", "CONFIG_INVALID", "RATE_LIMITED"),
  },
});

export function createHealthRoutes() {
  const routes = createRouter();

  // Liveness answers even with broken config: it says the isolate runs, nothing more.
  routes.openapi(livenessRoute, (c) => {
    const loaded = loadConfig(c.env);
    return ok(c, {
      status: "ok" as const,
      timestamp: new Date().toISOString(),
      environment: loaded.ok ? loaded.config.ENVIRONMENT : (c.env.ENVIRONMENT ?? "unknown"),
      version: loaded.ok ? loaded.config.APP_VERSION : (c.env.APP_VERSION ?? "unknown"),
    });
  });

  routes.openapi(readinessRoute, async (c) => {
    const loaded = loadConfig(c.env);
    // Public and it touches every dependency: limited per IP, like any route no user signs.
    if (loaded.ok) {
      c.set("config", loaded.config);
      await applyRateLimit(c, "ip");
    }
    const report = await checkReadiness(
      loaded.ok
        ? {
            config: loaded,
            database: databaseFor(loaded.config),
            redis: createRedis(loaded.config, { retries: 0 }),
          }
        : { config: loaded },
    );
    c.header("Cache-Control", "no-store");
    // Which variables are wrong is for operators (the log), not for whoever asks.
    const checks = Object.fromEntries(
      Object.entries(report.checks).map(([name, check]) => {
        const { variables: _variables, ...shown } = check as CheckResult & { variables?: string[] };
        return [name, shown];
      }),
    );
    if (report.ready) return ok(c, { status: "ready" as const, checks: checks as typeof report.checks });

    const failing = Object.entries(report.checks).filter(([, check]) => !check.ok);
    c.var.logger.warn("readiness failed", {
      failing: failing.map(([name]) => name),
      variables: failing.flatMap(([, check]) => (check.ok ? [] : (check.variables ?? []))),
    });
    if (!loaded.ok) throw new AppError("CONFIG_INVALID", { message: "Not ready: invalid configuration", details: { checks } });
    throw new AppError("SERVICE_UNAVAILABLE", { message: `Not ready: ${failing.map(([name]) => name).join(", ")}`, details: { checks } });
  });

  return routes;
}

