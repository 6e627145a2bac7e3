import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonBody, jsonBodyErrors, jsonResponse, type Router } from "../../../lib/openapi";
import { applyRateLimit } from "../../../lib/rate-limit";
import { createSessionSchema, sessionDetailSchema } from "../schemas";
import { createSession } from "../service";
import { depsOf } from "./deps";

const route = createRoute({
  method: "post",
  path: "/",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "Open a session from uploaded screenshots (OCR is queued) or from typed messages (ready at once)",
  description: "A screenshot session spends AI money (OCR), so it counts against the AI rate limit and the daily budget; a typed one does neither.",
  request: { body: jsonBody(createSessionSchema) },
  responses: {
    201: jsonResponse(sessionDetailSchema, "The session and its WebSocket URL"),
    ...errorResponses(...jsonBodyErrors, "UPLOAD_NOT_FOUND", "UPLOAD_ALREADY_USED", "AI_BUDGET_EXCEEDED", "SERVICE_UNAVAILABLE", ...authErrors),
  },
});

export function registerCreateSession(router: Router) {
  router.openapi(route, async (c) => {
    const input = c.req.valid("json");
    // Only screenshots spend AI money (OCR); typing a conversation in stays out of the AI tier.
    if (input.type === "screenshot") await applyRateLimit(c, "ai");
    return ok(c, await createSession(depsOf(c), c.var.user.id, input), 201);
  });
}
