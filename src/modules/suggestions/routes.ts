import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { aiEngineFor } from "../../ai/engine";
import type { AppEnv } from "../../lib/app-env";
import { ok } from "../../lib/envelope";
import { createJobPublisher } from "../../lib/jobs";
import { authErrors, bearerSecurity, createRouter, errorResponses, jsonBody, jsonBodyErrors, jsonResponse } from "../../lib/openapi";
import { createBroadcast } from "../../realtime/rooms";
import { sessionIdParamsSchema } from "../sessions/schemas";
import { feedbackSchema, generateSuggestionsSchema, generationSchema, generationStartedSchema, suggestionParamsSchema, suggestionSchema } from "./schemas";
import { listGenerations, setFeedback, startGeneration } from "./service";

const tags = ["suggestions"];

const generateRoute = createRoute({
  method: "post",
  path: "/sessions/{id}/generate-suggestions",
  tags,
  security: bearerSecurity,
  summary: "Start writing reply suggestions; they stream over the session's WebSocket",
  description:
    "202 at once. The room then sends `phase`, `suggestion.started`, `suggestion.delta` ({generationId, index, delta}) as tokens arrive, and `suggestion.completed`; or `generation.restarted`, `generation.cancelled`, `generation.failed`.",
  request: { params: sessionIdParamsSchema, body: jsonBody(generateSuggestionsSchema) },
  responses: {
    202: jsonResponse(generationStartedSchema, "Queued"),
    ...errorResponses(...jsonBodyErrors, "SESSION_NOT_FOUND", "INVALID_SESSION_STATE", "CONVERSATION_EMPTY", "AI_BUDGET_EXCEEDED", "SERVICE_UNAVAILABLE", ...authErrors),
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/sessions/{id}/suggestions",
  tags,
  security: bearerSecurity,
  summary: "Every generation of the session, newest first, with its suggestions",
  request: { params: sessionIdParamsSchema },
  responses: { 200: jsonResponse(z.array(generationSchema), "Generations"), ...errorResponses("VALIDATION_ERROR", "SESSION_NOT_FOUND", ...authErrors) },
});

const feedbackRoute = createRoute({
  method: "post",
  path: "/suggestions/{id}/feedback",
  tags,
  security: bearerSecurity,
  summary: "Record what the user did with a suggestion (liked, disliked, copied, sent; null clears)",
  request: { params: suggestionParamsSchema, body: jsonBody(feedbackSchema) },
  responses: { 200: jsonResponse(suggestionSchema, "The suggestion"), ...errorResponses(...jsonBodyErrors, "SUGGESTION_NOT_FOUND", ...authErrors) },
});

/**
 * Suggestions, mounted at /api/v1 before the sessions routes. Guards are scoped to these paths,
 * so no other route runs them twice; generating also takes the stricter AI rate limit.
 */
export function createSuggestionsRoutes(guards: { authenticated: MiddlewareHandler<AppEnv>[]; ai: MiddlewareHandler<AppEnv>[] }) {
  const router = createRouter();
  router.use("/sessions/:id/generate-suggestions", ...guards.authenticated, ...guards.ai);
  router.use("/sessions/:id/suggestions", ...guards.authenticated);
  router.use("/suggestions/*", ...guards.authenticated);

  router.openapi(generateRoute, async (c) => {
    const started = await startGeneration(
      {
        db: c.var.db,
        broadcast: createBroadcast(c.env, c.var.logger),
        publishJob: createJobPublisher(c.var.config),
        assertWithinBudget: (userId) => aiEngineFor(c.var.config, c.var.db).budget.assertWithinBudget(userId),
        publicBaseUrl: c.var.config.PUBLIC_BASE_URL,
        logger: c.var.logger,
      },
      c.var.user.id,
      c.req.valid("param").id,
      c.req.valid("json"),
    );
    return ok(c, started, 202);
  });

  router.openapi(listRoute, async (c) => ok(c, await listGenerations(c.var.db, c.var.user.id, c.req.valid("param").id)));

  router.openapi(feedbackRoute, async (c) => ok(c, await setFeedback(c.var.db, c.var.user.id, c.req.valid("param").id, c.req.valid("json"))));

  return router;
}
