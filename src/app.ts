import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "./lib/app-env";
import { loadConfig } from "./lib/env";
import { fail } from "./lib/envelope";
import { AppError } from "./lib/errors";
import { createLogger } from "./lib/logger";
import { createHealthRoutes } from "./modules/health/routes";

export function createApp() {
  const app = new Hono<AppEnv>();

  app.use(requestId({ headerName: "X-Request-Id" }));
  app.use(async (c, next) => {
    const loaded = loadConfig(c.env);
    const logger = createLogger({
      level: loaded.ok ? loaded.config.LOG_LEVEL : "info",
      base: { requestId: c.var.requestId },
    });
    c.set("logger", logger);
    const started = Date.now();
    await next();
    logger.info("request", {
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      latencyMs: Date.now() - started,
    });
  });
  app.use(secureHeaders());

  const v1 = new Hono<AppEnv>();
  v1.route("/health", createHealthRoutes());
  app.route("/api/v1", v1);

  app.notFound((c) => fail(c, "NOT_FOUND", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    if (error instanceof AppError) return fail(c, error.code, error.message, error.details);
    c.var.logger?.error("unhandled error", { error });
    return fail(c, "INTERNAL_ERROR", undefined, { requestId: c.var.requestId });
  });

  return app;
}
