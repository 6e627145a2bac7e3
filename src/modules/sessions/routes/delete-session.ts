import { createRoute, z } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { forgetRoom } from "../../../realtime/rooms";
import { sessionRoom } from "../room";
import { sessionIdParamsSchema } from "../schemas";
import { softDeleteSession } from "../service";

const route = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "Delete a session (soft; purged with the account). Its open sockets close at once (4404 ROOM_DELETED) and its room's events are deleted",
  request: { params: sessionIdParamsSchema },
  responses: {
    200: jsonResponse(z.object({ deleted: z.literal(true) }), "Deleted"),
    ...errorResponses("VALIDATION_ERROR", "SESSION_NOT_FOUND", ...authErrors),
  },
});

export function registerDeleteSession(router: Router) {
  router.openapi(route, async (c) => {
    const { id } = c.req.valid("param");
    await softDeleteSession(c.var.db, c.var.user.id, id);
    // The deletion stands either way: a room that cannot be reached now is wiped by the purge.
    await forgetRoom(c.env, sessionRoom(id), "ROOM_DELETED").catch((error: unknown) => c.var.logger.error("room not forgotten", { error }));
    return ok(c, { deleted: true as const });
  });
}
