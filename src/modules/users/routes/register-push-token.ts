import { createRoute, z } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonBody, jsonBodyErrors, jsonResponse, type Router } from "../../../lib/openapi";
import { registerPushTokenSchema } from "../schemas";
import { registerPushToken } from "../service";

const pushTokenSchema = z
  .object({
    token: z.string(),
    platform: z.enum(["ios", "android", "web"]).nullable(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .openapi("PushToken");

const route = createRoute({
  method: "post",
  path: "/me/push-tokens",
  tags: ["users"],
  security: bearerSecurity,
  summary: "Register (or move to the caller) an Expo push token",
  request: { body: jsonBody(registerPushTokenSchema) },
  responses: {
    200: jsonResponse(pushTokenSchema, "The registered token"),
    ...errorResponses(...jsonBodyErrors, ...authErrors),
  },
});

export function registerRegisterPushToken(router: Router) {
  router.openapi(route, async (c) => {
    return ok(c, await registerPushToken(c.var.db, c.var.user.id, c.req.valid("json")));
  });
}
