import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonBody, jsonBodyErrors, jsonResponse, type Router } from "../../../lib/openapi";
import { updateMessage } from "../messages";
import { messageParamsSchema, messageSchema, updateMessageSchema } from "../schemas";

const route = createRoute({
  method: "patch",
  path: "/{id}/messages/{messageId}",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "Edit a message's sender, text or time, or move it to another position",
  request: { params: messageParamsSchema, body: jsonBody(updateMessageSchema) },
  responses: {
    200: jsonResponse(messageSchema, "The message"),
    ...errorResponses(...jsonBodyErrors, "SESSION_NOT_FOUND", "MESSAGE_NOT_FOUND", "INVALID_SESSION_STATE", ...authErrors),
  },
});

export function registerUpdateMessage(router: Router) {
  router.openapi(route, async (c) => {
    const { id, messageId } = c.req.valid("param");
    return ok(c, await updateMessage(c.var.db, { sessionId: id, userId: c.var.user.id }, messageId, c.req.valid("json")));
  });
}
