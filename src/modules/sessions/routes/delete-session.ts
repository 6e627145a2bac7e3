import { createRoute, z } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { sessionIdParamsSchema } from "../schemas";
import { softDeleteSession } from "../service";

const route = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "Delete a session (soft; purged with the account)",
  request: { params: sessionIdParamsSchema },
  responses: {
    200: jsonResponse(z.object({ deleted: z.literal(true) }), "Deleted"),
    ...errorResponses("VALIDATION_ERROR", "SESSION_NOT_FOUND", ...authErrors),
  },
});

export function registerDeleteSession(router: Router) {
  router.openapi(route, async (c) => {
    await softDeleteSession(c.var.db, c.var.user.id, c.req.valid("param").id);
    return ok(c, { deleted: true as const });
  });
}
