import { createRoute } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { aiEngineFor } from "../../ai/engine";
import type { AppEnv } from "../../lib/app-env";
import { ok } from "../../lib/envelope";
import { authErrors, bearerSecurity, createRouter, errorResponses, jsonResponse } from "../../lib/openapi";
import { todaysTipSchema } from "./schemas";
import { todaysTip } from "./service";

const todayRoute = createRoute({
  method: "get",
  path: "/today",
  tags: ["tips"],
  security: bearerSecurity,
  summary: "The caller's tip for today, in their local date; the daily push carries the same one",
  description:
    "The tip already delivered for the caller's local date (from their time zone), or a fresh one chosen now and recorded as that day's delivery: one the caller has not had in the last 30 days, leaning towards the phase of their most recent conversation.",
  responses: { 200: jsonResponse(todaysTipSchema, "Today's tip"), ...errorResponses(...authErrors) },
});

/** Daily tips, mounted at /api/v1/tips. */
export function createTipRoutes(guards: { authenticated: MiddlewareHandler<AppEnv>[] }) {
  const router = createRouter();
  router.use("/today", ...guards.authenticated);
  router.openapi(todayRoute, async (c) =>
    ok(c, await todaysTip({ db: c.var.db, engine: aiEngineFor(c.var.config, c.var.db), logger: c.var.logger }, c.var.user.id, new Date()), 200),
  );
  return router;
}
