import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { sessionDetailSchema, sessionIdParamsSchema } from "../schemas";
import { loadSession } from "../service";
import { depsOf } from "./deps";

const route = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "A session with its messages, images, latest suggestions and status",
  request: { params: sessionIdParamsSchema },
  responses: { 200: jsonResponse(sessionDetailSchema, "The session"), ...errorResponses("VALIDATION_ERROR", "SESSION_NOT_FOUND", ...authErrors) },
});

export function registerGetSession(router: Router) {
  router.openapi(route, async (c) => ok(c, await loadSession(depsOf(c), c.var.user.id, c.req.valid("param").id)));
}
