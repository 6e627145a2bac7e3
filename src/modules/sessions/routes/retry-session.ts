import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { rateLimit } from "../../../lib/rate-limit";
import { sessionDetailSchema, sessionIdParamsSchema } from "../schemas";
import { retrySession } from "../service";
import { depsOf } from "./deps";

const route = createRoute({
  method: "post",
  path: "/{id}/retry",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "Retry a failed session from the step that failed",
  description: "Counts against the AI rate limit; retrying OCR also checks the daily AI budget, and answers 410 SCREENSHOTS_EXPIRED once the screenshots were deleted.",
  request: { params: sessionIdParamsSchema },
  responses: {
    200: jsonResponse(sessionDetailSchema, "The session, back in its queue or ready"),
    ...errorResponses("VALIDATION_ERROR", "SESSION_NOT_FOUND", "INVALID_SESSION_STATE", "SCREENSHOTS_EXPIRED", "AI_BUDGET_EXCEEDED", "SERVICE_UNAVAILABLE", ...authErrors),
  },
});

export function registerRetrySession(router: Router) {
  // A retry queues OCR or frees the session for another generation: both lead to AI spend.
  router.use("/:id/retry", rateLimit("ai"));
  router.openapi(route, async (c) => ok(c, await retrySession(depsOf(c), c.var.user.id, c.req.valid("param").id)));
}
