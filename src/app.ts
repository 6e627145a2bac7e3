import { swaggerUI } from "@hono/swagger-ui";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { features, type Guards, jobsOf, roomKindsOf } from "./features";
import type { AppEnv } from "./lib/app-env";
import { requireAuth } from "./lib/auth";
import { unreachableDatabaseError } from "./lib/db";
import { loadConfig } from "./lib/env";
import { fail } from "./lib/envelope";
import { AppError, type HttpErrorCode } from "./lib/errors";
import { createLogger } from "./lib/logger";
import { createRouter, errorCodeComponent } from "./lib/openapi";
import { rateLimit } from "./lib/rate-limit";
import { drainUnreadBody } from "./lib/request-body";
import { withServices } from "./lib/services";
import { createJobRoutes } from "./modules/jobs/routes";
import { MAX_UPLOAD_BYTES } from "./modules/uploads/schemas";
import { resolveIdentity } from "./modules/users/service";
import { createRoomRoutes } from "./realtime/rooms";

const JSON_BODY_LIMIT = 64 * 1024;
const WEBHOOK_BODY_LIMIT = 512 * 1024;
// A failure callback carries the original body and the last response, both base64.
const JOB_BODY_LIMIT = 1024 * 1024;

function limitBody(maxSize: number): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new AppError("PAYLOAD_TOO_LARGE", { message: `The request body exceeds ${maxSize} bytes` });
    },
  });
}

/** Bodies sent to the JSON API must say they are JSON; anything else is 415, not a parse guess. */
const requireJsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const hasBody = Number(c.req.header("Content-Length") ?? 0) > 0 || c.req.header("Transfer-Encoding") !== undefined;
  if (hasBody && !/^application\/([\w.-]+\+)?json\b/i.test(c.req.header("Content-Type") ?? "")) {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", { message: "Send the body as application/json" });
  }
  await next();
};

function unlessUpload(middleware: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  return (c, next) => (c.req.path.startsWith("/api/v1/uploads/") ? next() : middleware(c, next));
}

function corsFromConfig(): MiddlewareHandler<AppEnv> {
  return cors({
    origin: (origin, c: Context<AppEnv>) => {
      const loaded = loadConfig(c.env);
      return loaded.ok && loaded.config.CORS_ORIGINS.includes(origin) ? origin : null;
    },
    allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    allowHeaders: ["Authorization", "Content-Type", "X-Request-Id"],
    exposeHeaders: ["X-Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"],
    maxAge: 600,
  });
}

/** Authenticated answers are one person's data: no cache, shared or the device's, may keep them. */
const noStore: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  c.header("Cache-Control", "no-store");
};

/**
 * A Content-Security-Policy for the API docs page: its files from this origin only, and of inline
 * scripts only the ones this page carries (by hash), so an injected script cannot run there.
 */
const docsContentSecurityPolicy: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (!c.res.headers.get("Content-Type")?.startsWith("text/html")) return;
  const html = await c.res.text();
  const hashes = await Promise.all(
    [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map(async ([, body]) => {
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body));
      return `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
    }),
  );
  c.res = new Response(html, c.res);
  c.header(
    "Content-Security-Policy",
    [
      "default-src 'none'",
      `script-src 'self' ${hashes.join(" ")}`.trim(),
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data:",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  );
};

/** The request's ExecutionContext; none when the app is called without one (hono's `app.request`). */
function executionContextOf(c: Context<AppEnv>): Context<AppEnv>["executionCtx"] | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}

function errorCodeForHttpException(error: HTTPException): HttpErrorCode {
  if (error.status === 400 && /malformed json/i.test(error.message)) return "INVALID_JSON";
  if (error.status === 413) return "PAYLOAD_TOO_LARGE";
  if (error.status === 415) return "UNSUPPORTED_MEDIA_TYPE";
  if (error.status === 404) return "NOT_FOUND";
  if (error.status === 401) return "UNAUTHORIZED";
  if (error.status === 400) return "VALIDATION_ERROR";
  return "INTERNAL_ERROR";
}

export function createApp() {
  const app = createRouter();

  // First, so that whatever answers early — a guard, a refusal, an error — still reads the body.
  app.use(drainUnreadBody(MAX_UPLOAD_BYTES));
  app.use(requestId({ headerName: "X-Request-Id" }));
  app.use(async (c, next) => {
    const loaded = loadConfig(c.env);
    c.set("logger", createLogger({ level: loaded.ok ? loaded.config.LOG_LEVEL : "info", base: { requestId: c.var.requestId } }));
    const started = Date.now();
    await next();
    const fields = { method: c.req.method, route: c.req.routePath, status: c.res.status, latencyMs: Date.now() - started };
    const { logger } = c.var;
    // Written once the answer has gone: a console write is not free (the api bench's app ran at
    // 1.38× of the bare query with request logs, 1.26× without), and no client should wait for it.
    const write = () => logger.info("request", fields);
    const ctx = executionContextOf(c);
    if (ctx) ctx.waitUntil(new Promise<void>((resolve) => setTimeout(() => (write(), resolve()), 0)));
    else write();
  });
  app.use(secureHeaders());
  app.use(corsFromConfig());
  // Image uploads are raw bytes, sized by their signed URL (see modules/uploads): not JSON.
  app.use("/api/v1/*", unlessUpload(limitBody(JSON_BODY_LIMIT)), unlessUpload(requireJsonBody));
  app.use("/api/webhooks/*", limitBody(WEBHOOK_BODY_LIMIT));
  app.use("/jobs/*", limitBody(JOB_BODY_LIMIT));

  const services = [withServices()];
  const guards: Guards = {
    services,
    authenticated: [noStore, ...services, requireAuth((c, session) => resolveIdentity(c.var.db, session)), rateLimit("user")],
    ai: [rateLimit("ai")],
    ip: [rateLimit("ip")],
  };

  // Sockets and their tickets choose their guards per route (a socket may authenticate in its room).
  app.route("/api/v1", createRoomRoutes(roomKindsOf(features), { services, authenticated: guards.authenticated }));
  for (const feature of features) {
    for (const routes of feature.routes ?? []) app.route(routes.base, routes.create(guards));
  }
  app.route("/jobs", createJobRoutes(services, jobsOf(features), roomKindsOf(features)));

  app.openAPIRegistry.registerComponent("schemas", "ErrorCode", errorCodeComponent());
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A Clerk session token",
  });
  app.doc31("/api/v1/openapi.json", (c) => ({
    openapi: "3.1.0",
    info: {
      title: "Charisma API",
      version: c.env?.APP_VERSION ?? "dev",
      description:
        "Every response is an envelope: `{success: true, data}` or `{success: false, error: {code, message, details?}}`.",
    },
  }));
  // The UI's files are static assets of this Worker (see wrangler.toml), not a CDN's.
  app.get("/api/v1/docs", docsContentSecurityPolicy, swaggerUI({ url: "/api/v1/openapi.json", title: "Charisma API", baseUrl: "/api/v1/docs/assets" }));

  app.notFound((c) => fail(c, "NOT_FOUND", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    if (error instanceof AppError) {
      // A 503 is a dependency or a run being busy, retried by the client or QStash: not a defect.
      if (error.status === 503) c.var.logger?.warn("request refused for now", { code: error.code, error });
      else if (error.status >= 500) c.var.logger?.error("request failed", { code: error.code, error });
      if (error.retryAfterSeconds !== undefined) c.header("Retry-After", String(error.retryAfterSeconds));
      return fail(c, error.code, error.message, error.details);
    }
    if (error instanceof HTTPException) {
      const code = errorCodeForHttpException(error);
      return fail(c, code, code === "INTERNAL_ERROR" ? undefined : error.message);
    }
    const unreachable = unreachableDatabaseError(error);
    if (unreachable) {
      // Transient: the client tries again after Retry-After; QStash retries a job delivery itself.
      c.var.logger?.warn("database unreachable", { error: unreachable });
      return fail(c, "DATABASE_UNAVAILABLE");
    }
    c.var.logger?.error("unhandled error", { error });
    return fail(c, "INTERNAL_ERROR", undefined, { requestId: c.var.requestId });
  });

  return app;
}
