import { createRoute, z } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { closeSocketsOfUser } from "../../../realtime/rooms";
import { forgetIdentity, softDeleteUser } from "../service";

const deletedAccountSchema = z
  .object({ deleted: z.literal(true), purgeAfter: z.string().datetime() })
  .openapi("DeletedAccount");

const route = createRoute({
  method: "delete",
  path: "/me",
  tags: ["users"],
  security: bearerSecurity,
  summary: "Soft-delete the account; rows and images are purged after the grace period. Every open socket of the account closes at once (4401 ACCOUNT_DELETED)",
  responses: { 200: jsonResponse(deletedAccountSchema, "Deletion scheduled"), ...errorResponses(...authErrors) },
});

export function registerDeleteMe(router: Router) {
  router.openapi(route, async (c) => {
    const result = await softDeleteUser(c.var.db, c.var.user.id, c.var.config.ACCOUNT_PURGE_AFTER_DAYS);
    forgetIdentity(c.var.user.clerkId);
    // The rooms keep their events until the purge: an account restored meanwhile resumes them.
    const { closedSockets } = await closeSocketsOfUser(c.env, c.var.config, c.var.user.id, "ACCOUNT_DELETED", c.var.logger);
    c.var.logger.info("account soft-deleted", { closedSockets });
    return ok(c, result);
  });
}
