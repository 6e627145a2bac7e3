import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { userSchema } from "../schemas";
import { getUser, toPublicUser } from "../service";

const route = createRoute({
  method: "get",
  path: "/me",
  tags: ["users"],
  security: bearerSecurity,
  summary: "The caller's profile, preferences and onboarding state",
  responses: { 200: jsonResponse(userSchema, "The user"), ...errorResponses(...authErrors) },
});

export function registerGetMe(router: Router) {
  router.openapi(route, async (c) => ok(c, toPublicUser(await getUser(c.var.db, c.var.user.id))));
}
