import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonBody, jsonBodyErrors, jsonResponse, type Router } from "../../../lib/openapi";
import { updateUserSchema, userSchema } from "../schemas";
import { toPublicUser, updateProfile } from "../service";

const route = createRoute({
  method: "put",
  path: "/me",
  tags: ["users"],
  security: bearerSecurity,
  summary: "Update profile fields and preferences",
  request: { body: jsonBody(updateUserSchema) },
  responses: {
    200: jsonResponse(userSchema, "The updated user"),
    ...errorResponses(...jsonBodyErrors, ...authErrors),
  },
});

export function registerUpdateMe(router: Router) {
  router.openapi(route, async (c) => {
    const user = await updateProfile(c.var.db, c.var.user.id, c.req.valid("json"));
    return ok(c, toPublicUser(user));
  });
}
