import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { insightsSchema } from "../schemas";
import { insightsOf } from "../service";

const route = createRoute({
  method: "get",
  path: "/me/insights",
  tags: ["users"],
  security: bearerSecurity,
  summary: "The caller's own numbers: sessions, the matches' interest, tones and their feedback, openers, languages",
  responses: { 200: jsonResponse(insightsSchema, "Insights"), ...errorResponses(...authErrors) },
});

export function registerInsights(router: Router) {
  router.openapi(route, async (c) => ok(c, await insightsOf(c.var.db, c.var.user.id)));
}
