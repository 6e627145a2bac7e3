import { createRoute, z } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { deleteMessage } from "../messages";
import { messageParamsSchema } from "../schemas";

const route = createRoute({
  method: "delete",
  path: "/{id}/messages/{messageId}",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "Delete a message; later ones move up",
  request: { params: messageParamsSchema },
  responses: {
    200: jsonResponse(z.object({ deleted: z.literal(true) }), "Deleted"),
    ...errorResponses("VALIDATION_ERROR", "SESSION_NOT_FOUND", "MESSAGE_NOT_FOUND", "INVALID_SESSION_STATE", ...authErrors),
  },
});

export function registerDeleteMessage(router: Router) {
  router.openapi(route, async (c) => {
    const { id, messageId } = c.req.valid("param");
    await deleteMessage(c.var.db, { sessionId: id, userId: c.var.user.id }, messageId);
    return ok(c, { deleted: true as const });
  });
}
