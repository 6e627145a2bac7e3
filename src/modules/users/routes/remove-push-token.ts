import { createRoute, z } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { expoPushTokenSchema } from "../schemas";
import { removePushToken } from "../service";

const pushTokenParamsSchema = z.object({
  token: expoPushTokenSchema.openapi({ param: { name: "token", in: "path" } }),
});

const route = createRoute({
  method: "delete",
  path: "/me/push-tokens/{token}",
  tags: ["users"],
  security: bearerSecurity,
  summary: "Remove one of the caller's push tokens",
  request: { params: pushTokenParamsSchema },
  responses: {
    200: jsonResponse(z.object({ removed: z.literal(true) }), "Removed"),
    ...errorResponses("VALIDATION_ERROR", "NOT_FOUND", ...authErrors),
  },
});

export function registerRemovePushToken(router: Router) {
  router.openapi(route, async (c) => {
    await removePushToken(c.var.db, c.var.user.id, c.req.valid("param").token);
    return ok(c, { removed: true as const });
  });
}
