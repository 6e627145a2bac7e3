import { createRoute, z } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { listSessionsQuerySchema, sessionSummarySchema } from "../schemas";
import { listSessions } from "../service";

const sessionPageSchema = z
  .object({ items: z.array(sessionSummarySchema), nextCursor: z.string().nullable() })
  .openapi("SessionPage");

const route = createRoute({
  method: "get",
  path: "/",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "The caller's sessions, newest first; pass `nextCursor` back as `cursor` for the next page",
  request: { query: listSessionsQuerySchema },
  responses: { 200: jsonResponse(sessionPageSchema, "One page"), ...errorResponses("VALIDATION_ERROR", ...authErrors) },
});

export function registerListSessions(router: Router) {
  router.openapi(route, async (c) => ok(c, await listSessions(c.var.db, c.var.user.id, c.req.valid("query"))));
}
