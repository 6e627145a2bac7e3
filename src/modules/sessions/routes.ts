import { createRoute, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { aiEngineFor } from "../../ai/engine";
import type { AppEnv } from "../../lib/app-env";
import { ok } from "../../lib/envelope";
import { createJobPublisher } from "../../lib/jobs";
import { applyRateLimit, rateLimit } from "../../lib/rate-limit";
import { authErrors, createRouter, errorResponses, jsonBody, jsonResponse } from "../../lib/openapi";
import { createBroadcast } from "../../realtime/rooms";
import { addMessage, deleteMessage, updateMessage } from "./messages";
import {
  addMessageSchema,
  confirmOcrSchema,
  createSessionSchema,
  listSessionsQuerySchema,
  messageParamsSchema,
  messageSchema,
  sessionDetailSchema,
  sessionIdParamsSchema,
  sessionPageSchema,
  updateMessageSchema,
} from "./schemas";
import { confirmOcr, createSession, listSessions, loadSession, retrySession, type SessionDeps, softDeleteSession } from "./service";

const tags = ["sessions"];
const security = [{ bearerAuth: [] }];
const bodyErrors = ["VALIDATION_ERROR", "INVALID_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"] as const;
const notFound = ["SESSION_NOT_FOUND"] as const;

const createSessionRoute = createRoute({
  method: "post",
  path: "/",
  tags,
  security,
  summary: "Open a session from uploaded screenshots (OCR is queued) or from typed messages (ready at once)",
  description: "A screenshot session spends AI money (OCR), so it counts against the AI rate limit and the daily budget; a typed one does neither.",
  request: { body: jsonBody(createSessionSchema) },
  responses: {
    201: jsonResponse(sessionDetailSchema, "The session and its WebSocket URL"),
    ...errorResponses(...bodyErrors, "UPLOAD_NOT_FOUND", "UPLOAD_ALREADY_USED", "AI_BUDGET_EXCEEDED", "SERVICE_UNAVAILABLE", ...authErrors),
  },
});

const listSessionsRoute = createRoute({
  method: "get",
  path: "/",
  tags,
  security,
  summary: "The caller's sessions, newest first; pass `nextCursor` back as `cursor` for the next page",
  request: { query: listSessionsQuerySchema },
  responses: { 200: jsonResponse(sessionPageSchema, "One page"), ...errorResponses("VALIDATION_ERROR", ...authErrors) },
});

const getSessionRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  security,
  summary: "A session with its messages, images, latest suggestions and status",
  request: { params: sessionIdParamsSchema },
  responses: { 200: jsonResponse(sessionDetailSchema, "The session"), ...errorResponses("VALIDATION_ERROR", ...notFound, ...authErrors) },
});

const deleteSessionRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  security,
  summary: "Delete a session (soft; purged with the account)",
  request: { params: sessionIdParamsSchema },
  responses: {
    200: jsonResponse(z.object({ deleted: z.literal(true) }), "Deleted"),
    ...errorResponses("VALIDATION_ERROR", ...notFound, ...authErrors),
  },
});

const confirmOcrRoute = createRoute({
  method: "post",
  path: "/{id}/confirm-ocr",
  tags,
  security,
  summary: "Accept the OCR result, optionally corrected; the session becomes ready",
  request: { params: sessionIdParamsSchema, body: { ...jsonBody(confirmOcrSchema), required: false } },
  responses: {
    200: jsonResponse(sessionDetailSchema, "The ready session"),
    ...errorResponses(...bodyErrors, ...notFound, "INVALID_SESSION_STATE", ...authErrors),
  },
});

const retryRoute = createRoute({
  method: "post",
  path: "/{id}/retry",
  tags,
  security,
  summary: "Retry a failed session from the step that failed",
  description: "Counts against the AI rate limit; retrying OCR also checks the daily AI budget.",
  request: { params: sessionIdParamsSchema },
  responses: {
    200: jsonResponse(sessionDetailSchema, "The session, back in its queue or ready"),
    ...errorResponses("VALIDATION_ERROR", ...notFound, "INVALID_SESSION_STATE", "AI_BUDGET_EXCEEDED", "SERVICE_UNAVAILABLE", ...authErrors),
  },
});

const addMessageRoute = createRoute({
  method: "post",
  path: "/{id}/messages",
  tags,
  security,
  summary: "Insert a message (at the end, or at `position`)",
  request: { params: sessionIdParamsSchema, body: jsonBody(addMessageSchema) },
  responses: {
    201: jsonResponse(messageSchema, "The new message"),
    ...errorResponses(...bodyErrors, ...notFound, "INVALID_SESSION_STATE", "CONVERSATION_TOO_LONG", ...authErrors),
  },
});

const updateMessageRoute = createRoute({
  method: "patch",
  path: "/{id}/messages/{messageId}",
  tags,
  security,
  summary: "Edit a message's sender, text or time, or move it to another position",
  request: { params: messageParamsSchema, body: jsonBody(updateMessageSchema) },
  responses: {
    200: jsonResponse(messageSchema, "The message"),
    ...errorResponses(...bodyErrors, ...notFound, "MESSAGE_NOT_FOUND", "INVALID_SESSION_STATE", ...authErrors),
  },
});

const deleteMessageRoute = createRoute({
  method: "delete",
  path: "/{id}/messages/{messageId}",
  tags,
  security,
  summary: "Delete a message; later ones move up",
  request: { params: messageParamsSchema },
  responses: {
    200: jsonResponse(z.object({ deleted: z.literal(true) }), "Deleted"),
    ...errorResponses("VALIDATION_ERROR", ...notFound, "MESSAGE_NOT_FOUND", "INVALID_SESSION_STATE", ...authErrors),
  },
});

function depsOf(c: Context<AppEnv>): SessionDeps {
  return {
    db: c.var.db,
    bucket: c.env.IMAGES,
    broadcast: createBroadcast(c.env, c.var.logger),
    publishJob: createJobPublisher(c.var.config),
    assertWithinBudget: (userId) => aiEngineFor(c.var.config, c.var.db).budget.assertWithinBudget(userId),
    publicBaseUrl: c.var.config.PUBLIC_BASE_URL,
    logger: c.var.logger,
  };
}

/** `/api/v1/sessions`: every query is scoped to the caller; another user's id is a 404. */
export function createSessionsRoutes(guards: MiddlewareHandler<AppEnv>[]) {
  const router = createRouter();
  router.use("*", ...guards);
  // A retry queues OCR or frees the session for another generation: both lead to AI spend.
  router.use("/:id/retry", rateLimit("ai"));

  router.openapi(createSessionRoute, async (c) => {
    const input = c.req.valid("json");
    // Only screenshots spend AI money (OCR); typing a conversation in stays out of the AI tier.
    if (input.type === "screenshot") await applyRateLimit(c, "ai");
    return ok(c, await createSession(depsOf(c), c.var.user.id, input), 201);
  });

  router.openapi(listSessionsRoute, async (c) => ok(c, await listSessions(c.var.db, c.var.user.id, c.req.valid("query"))));

  router.openapi(getSessionRoute, async (c) => ok(c, await loadSession(depsOf(c), c.var.user.id, c.req.valid("param").id)));

  router.openapi(deleteSessionRoute, async (c) => {
    await softDeleteSession(c.var.db, c.var.user.id, c.req.valid("param").id);
    return ok(c, { deleted: true as const });
  });

  router.openapi(confirmOcrRoute, async (c) => {
    const body = c.req.valid("json") ?? {};
    return ok(c, await confirmOcr(depsOf(c), c.var.user.id, c.req.valid("param").id, body));
  });

  router.openapi(retryRoute, async (c) => ok(c, await retrySession(depsOf(c), c.var.user.id, c.req.valid("param").id)));

  router.openapi(addMessageRoute, async (c) => {
    const owner = { sessionId: c.req.valid("param").id, userId: c.var.user.id };
    return ok(c, await addMessage(c.var.db, owner, c.req.valid("json")), 201);
  });

  router.openapi(updateMessageRoute, async (c) => {
    const { id, messageId } = c.req.valid("param");
    return ok(c, await updateMessage(c.var.db, { sessionId: id, userId: c.var.user.id }, messageId, c.req.valid("json")));
  });

  router.openapi(deleteMessageRoute, async (c) => {
    const { id, messageId } = c.req.valid("param");
    await deleteMessage(c.var.db, { sessionId: id, userId: c.var.user.id }, messageId);
    return ok(c, { deleted: true as const });
  });

  return router;
}
