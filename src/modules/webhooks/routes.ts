import { verifyWebhook } from "@clerk/backend/webhooks";
import { createRoute } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../lib/app-env";
import { ok } from "../../lib/envelope";
import { AppError } from "../../lib/errors";
import { createRouter, errorResponses, jsonResponse } from "../../lib/openapi";
import { clerkEventSchema, svixIdSchema, webhookAckSchema } from "./schemas";
import { closeSocketsOfUser } from "../../realtime/rooms";
import { applyClerkEvent } from "./service";

const clerkWebhookRoute = createRoute({
  method: "post",
  path: "/clerk",
  tags: ["webhooks"],
  summary: "Clerk user events (Svix-signed): user.created, user.updated, user.deleted",
  description: "The signature is verified on the raw body before anything is parsed. Idempotent by svix-id.",
  responses: {
    200: jsonResponse(webhookAckSchema, "Accepted (or a replay, or an ignored event type)"),
    ...errorResponses("WEBHOOK_SIGNATURE_INVALID", "VALIDATION_ERROR", "PAYLOAD_TOO_LARGE", "RATE_LIMITED", "CONFIG_INVALID", "DATABASE_UNAVAILABLE"),
  },
});

/** `/api/webhooks`: machine-to-machine, authenticated by signature, never by bearer token. */
export function createWebhookRoutes(guards: MiddlewareHandler<AppEnv>[]) {
  const router = createRouter();
  router.use("*", ...guards);

  router.openapi(clerkWebhookRoute, async (c) => {
    const secret = c.var.config.CLERK_WEBHOOK_SECRET;
    if (!secret) throw new AppError("CONFIG_INVALID", { message: "Clerk webhooks are not configured" });
    let event: Awaited<ReturnType<typeof verifyWebhook>>;
    try {
      event = await verifyWebhook(c.req.raw, { signingSecret: secret });
    } catch {
      c.var.logger.warn("clerk webhook rejected: bad signature");
      throw new AppError("WEBHOOK_SIGNATURE_INVALID");
    }
    // Signed by Clerk, still only input: not an object with a type, or an id no key can hold, it is not an event we know.
    const parsed = clerkEventSchema.safeParse(event);
    const svixId = svixIdSchema.safeParse(c.req.header("svix-id"));
    if (!parsed.success || !svixId.success) throw new AppError("VALIDATION_ERROR", { message: "Unexpected Clerk event payload" });
    const { type, data } = parsed.data;
    let outcome;
    try {
      outcome = await applyClerkEvent(c.var.db, { svixId: svixId.data, type, data });
    } catch (error) {
      if (error instanceof Error && error.name === "ZodError") {
        throw new AppError("VALIDATION_ERROR", { message: "Unexpected Clerk event payload" });
      }
      throw error;
    }
    const log = outcome.handled || outcome.duplicate ? c.var.logger.info : c.var.logger.warn;
    log(outcome.duplicate ? "clerk webhook replay ignored" : outcome.handled ? "clerk webhook applied" : "clerk webhook type ignored", {
      type,
      svixId: svixId.data,
    });
    // Like DELETE /users/me: the account's open sockets close at once (4401 ACCOUNT_DELETED).
    if (outcome.deletedUserId) await closeSocketsOfUser(c.env, c.var.config, outcome.deletedUserId, "ACCOUNT_DELETED", c.var.logger);
    return ok(c, { received: true as const, duplicate: outcome.duplicate, handled: outcome.handled });
  });

  return router;
}
