import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonBody, jsonBodyErrors, jsonResponse, type Router } from "../../../lib/openapi";
import { addMessage } from "../messages";
import { addMessageSchema, messageSchema, sessionIdParamsSchema } from "../schemas";

const route = createRoute({
  method: "post",
  path: "/{id}/messages",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "Insert a message (at the end, or at `position`)",
  request: { params: sessionIdParamsSchema, body: jsonBody(addMessageSchema) },
  responses: {
    201: jsonResponse(messageSchema, "The new message"),
    ...errorResponses(...jsonBodyErrors, "SESSION_NOT_FOUND", "INVALID_SESSION_STATE", "CONVERSATION_TOO_LONG", ...authErrors),
  },
});

export function registerAddMessage(router: Router) {
  router.openapi(route, async (c) => {
    const owner = { sessionId: c.req.valid("param").id, userId: c.var.user.id };
    return ok(c, await addMessage(c.var.db, owner, c.req.valid("json")), 201);
  });
}
