import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonBody, jsonBodyErrors, jsonResponse, type Router } from "../../../lib/openapi";
import { onboardingSchema, userSchema } from "../schemas";
import { completeOnboarding, toPublicUser } from "../service";

const route = createRoute({
  method: "post",
  path: "/me/onboarding",
  tags: ["users"],
  security: bearerSecurity,
  summary: "Complete onboarding: answers become profile fields",
  request: { body: jsonBody(onboardingSchema) },
  responses: {
    200: jsonResponse(userSchema, "The onboarded user"),
    ...errorResponses(...jsonBodyErrors, ...authErrors),
  },
});

export function registerCompleteOnboarding(router: Router) {
  router.openapi(route, async (c) => {
    const user = await completeOnboarding(c.var.db, c.var.user.id, c.req.valid("json"));
    return ok(c, toPublicUser(user));
  });
}
