import { Hono } from "hono";
import type { AppEnv } from "../../lib/app-env";
import { createDatabase } from "../../lib/db";
import { loadConfig } from "../../lib/env";
import { fail, ok } from "../../lib/envelope";
import { createRedis } from "../../lib/redis";
import { checkReadiness } from "./service";

export function createHealthRoutes() {
  const routes = new Hono<AppEnv>();

  // Liveness answers even with broken config: it says the isolate runs, nothing more.
  routes.get("/", (c) => {
    const loaded = loadConfig(c.env);
    return ok(c, {
      status: "ok",
      timestamp: new Date().toISOString(),
      environment: loaded.ok ? loaded.config.ENVIRONMENT : (c.env.ENVIRONMENT ?? "unknown"),
      version: loaded.ok ? loaded.config.APP_VERSION : (c.env.APP_VERSION ?? "unknown"),
    });
  });

  routes.get("/ready", async (c) => {
    const loaded = loadConfig(c.env);
    const report = await checkReadiness(
      loaded.ok
        ? {
            config: loaded,
            database: createDatabase(loaded.config),
            redis: createRedis(loaded.config, { retries: 0 }),
          }
        : { config: loaded },
    );
    c.header("Cache-Control", "no-store");
    if (report.ready) return ok(c, { status: "ready", checks: report.checks });

    const failing = Object.entries(report.checks)
      .filter(([, check]) => !check.ok)
      .map(([name]) => name);
    c.var.logger.warn("readiness failed", { failing });
    if (!loaded.ok) {
      return fail(c, "CONFIG_INVALID", `Not ready: invalid configuration (${loaded.invalidVariables.join(", ")})`, {
        checks: report.checks,
      });
    }
    return fail(c, "SERVICE_UNAVAILABLE", `Not ready: ${failing.join(", ")}`, { checks: report.checks });
  });

  return routes;
}
