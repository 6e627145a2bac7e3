import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { aiEngineFor } from "../../ai/engine";
import type { AppEnv } from "../../lib/app-env";
import { ok } from "../../lib/envelope";
import { createJobPublisher } from "../../lib/jobs";
import { authErrors, bearerSecurity, createRouter, errorResponses, jsonBody, jsonBodyErrors, jsonResponse } from "../../lib/openapi";
import { generateOpenersSchema, openerGenerationStartedSchema, openerHistoryQuerySchema, openerHistorySchema, openerIdParamsSchema, openerSchema, toggleOpenerSchema } from "./schemas";
import { deleteOpener, listOpeners, startOpenerGeneration, toggleOpener } from "./service";

const tags = ["magic-openers"];

const generateRoute = createRoute({
  method: "post",
  path: "/generate",
  tags,
  security: bearerSecurity,
  summary: "Start writing first messages for a match's profile; they stream over the generation's WebSocket",
  description:
    "202 at once, with the generation's socket URL. Connect and authenticate: the room sends `opener.delta` ({generationId, index, delta}) as tokens arrive, then `opener.completed` with the stored openers; or `generation.restarted`, `generation.cancelled`, `generation.failed`.",
  request: { body: jsonBody(generateOpenersSchema) },
  responses: {
    202: jsonResponse(openerGenerationStartedSchema, "Queued"),
    ...errorResponses(...jsonBodyErrors, "UPLOAD_NOT_FOUND", "AI_BUDGET_EXCEEDED", "SERVICE_UNAVAILABLE", ...authErrors),
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags,
  security: bearerSecurity,
  summary: "The caller's openers, newest generation first, grouped by generation, with their like state",
  request: { query: openerHistoryQuerySchema },
  responses: { 200: jsonResponse(openerHistorySchema, "One page"), ...errorResponses("VALIDATION_ERROR", ...authErrors) },
});

const toggleRoute = createRoute({
  method: "post",
  path: "/{id}/toggle",
  tags,
  security: bearerSecurity,
  summary: "Like (true), dislike (false) or clear (null) one of the caller's openers",
  request: { params: openerIdParamsSchema, body: jsonBody(toggleOpenerSchema) },
  responses: { 200: jsonResponse(openerSchema, "The opener"), ...errorResponses(...jsonBodyErrors, "OPENER_NOT_FOUND", ...authErrors) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  security: bearerSecurity,
  summary: "Remove one of the caller's openers from their history",
  request: { params: openerIdParamsSchema },
  responses: { 200: jsonResponse(z.object({ deleted: z.literal(true) }), "Deleted"), ...errorResponses("VALIDATION_ERROR", "OPENER_NOT_FOUND", ...authErrors) },
});

/** Magic openers, mounted at /api/v1/magic-openers; generating also takes the stricter AI rate limit. */
export function createOpenerRoutes(guards: { authenticated: MiddlewareHandler<AppEnv>[]; ai: MiddlewareHandler<AppEnv>[] }) {
  const router = createRouter();
  router.use("/generate", ...guards.authenticated, ...guards.ai);
  router.use("/", ...guards.authenticated);
  router.use("/:id/*", ...guards.authenticated);
  router.use("/:id", ...guards.authenticated);

  router.openapi(generateRoute, async (c) => {
    const started = await startOpenerGeneration(
      {
        db: c.var.db,
        bucket: c.env.IMAGES,
        publishJob: createJobPublisher(c.var.config),
        assertWithinBudget: (userId) => aiEngineFor(c.var.config, c.var.db).budget.assertWithinBudget(userId),
        publicBaseUrl: c.var.config.PUBLIC_BASE_URL,
        logger: c.var.logger,
      },
      c.var.user.id,
      c.req.valid("json"),
    );
    return ok(c, started, 202);
  });
  router.openapi(listRoute, async (c) => ok(c, await listOpeners(c.var.db, c.var.user.id, c.req.valid("query"))));
  router.openapi(toggleRoute, async (c) => ok(c, await toggleOpener(c.var.db, c.var.user.id, c.req.valid("param").id, c.req.valid("json").liked)));
  router.openapi(deleteRoute, async (c) => {
    await deleteOpener(c.var.db, c.var.user.id, c.req.valid("param").id);
    return ok(c, { deleted: true as const });
  });
  return router;
}
