import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../lib/app-env";
import { ok } from "../../lib/envelope";
import { authErrors, createRouter, errorResponses, jsonBody, jsonResponse } from "../../lib/openapi";
import {
  deletedAccountSchema,
  onboardingSchema,
  pushTokenParamsSchema,
  pushTokenSchema,
  registerPushTokenSchema,
  updateUserSchema,
  usageSchema,
  userSchema,
} from "./schemas";
import {
  completeOnboarding,
  forgetIdentity,
  getUser,
  registerPushToken,
  removePushToken,
  softDeleteUser,
  toPublicUser,
  updateProfile,
  usageToday,
} from "./service";

const tags = ["users"];
const security = [{ bearerAuth: [] }];

const getMeRoute = createRoute({
  method: "get",
  path: "/me",
  tags,
  security,
  summary: "The caller's profile, preferences and onboarding state",
  responses: { 200: jsonResponse(userSchema, "The user"), ...errorResponses(...authErrors) },
});

const updateMeRoute = createRoute({
  method: "put",
  path: "/me",
  tags,
  security,
  summary: "Update profile fields and preferences",
  request: { body: jsonBody(updateUserSchema) },
  responses: {
    200: jsonResponse(userSchema, "The updated user"),
    ...errorResponses("VALIDATION_ERROR", "INVALID_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", ...authErrors),
  },
});

const onboardingRoute = createRoute({
  method: "post",
  path: "/me/onboarding",
  tags,
  security,
  summary: "Complete onboarding: answers become profile fields",
  request: { body: jsonBody(onboardingSchema) },
  responses: {
    200: jsonResponse(userSchema, "The onboarded user"),
    ...errorResponses("VALIDATION_ERROR", "INVALID_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", ...authErrors),
  },
});

const deleteMeRoute = createRoute({
  method: "delete",
  path: "/me",
  tags,
  security,
  summary: "Soft-delete the account; rows and images are purged after the grace period",
  responses: { 200: jsonResponse(deletedAccountSchema, "Deletion scheduled"), ...errorResponses(...authErrors) },
});

const registerPushTokenRoute = createRoute({
  method: "post",
  path: "/me/push-tokens",
  tags,
  security,
  summary: "Register (or move to the caller) an Expo push token",
  request: { body: jsonBody(registerPushTokenSchema) },
  responses: {
    200: jsonResponse(pushTokenSchema, "The registered token"),
    ...errorResponses("VALIDATION_ERROR", "INVALID_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", ...authErrors),
  },
});

const removePushTokenRoute = createRoute({
  method: "delete",
  path: "/me/push-tokens/{token}",
  tags,
  security,
  summary: "Remove one of the caller's push tokens",
  request: { params: pushTokenParamsSchema },
  responses: {
    200: jsonResponse(z.object({ removed: z.literal(true) }), "Removed"),
    ...errorResponses("VALIDATION_ERROR", "NOT_FOUND", ...authErrors),
  },
});

const usageRoute = createRoute({
  method: "get",
  path: "/me/usage",
  tags,
  security,
  summary: "Today's AI calls, cost and remaining budget",
  responses: { 200: jsonResponse(usageSchema, "Usage"), ...errorResponses(...authErrors) },
});

/** `/api/v1/users`: everything here acts on the caller, so no id ever comes from the client. */
export function createUsersRoutes(guards: MiddlewareHandler<AppEnv>[]) {
  const router = createRouter();
  router.use("*", ...guards);

  router.openapi(getMeRoute, async (c) => ok(c, toPublicUser(await getUser(c.var.db, c.var.user.id))));

  router.openapi(updateMeRoute, async (c) => {
    const user = await updateProfile(c.var.db, c.var.user.id, c.req.valid("json"));
    return ok(c, toPublicUser(user));
  });

  router.openapi(onboardingRoute, async (c) => {
    const user = await completeOnboarding(c.var.db, c.var.user.id, c.req.valid("json"));
    return ok(c, toPublicUser(user));
  });

  router.openapi(deleteMeRoute, async (c) => {
    const result = await softDeleteUser(c.var.db, c.var.user.id, c.var.config.ACCOUNT_PURGE_AFTER_DAYS);
    forgetIdentity(c.var.user.clerkId);
    c.var.logger.info("account soft-deleted");
    return ok(c, result);
  });

  router.openapi(registerPushTokenRoute, async (c) => {
    return ok(c, await registerPushToken(c.var.db, c.var.user.id, c.req.valid("json")));
  });

  router.openapi(removePushTokenRoute, async (c) => {
    await removePushToken(c.var.db, c.var.user.id, c.req.valid("param").token);
    return ok(c, { removed: true as const });
  });

  router.openapi(usageRoute, async (c) => {
    return ok(c, await usageToday(c.var.db, c.var.user.id, c.var.config.AI_DAILY_BUDGET_USER_USD));
  });

  return router;
}
