import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../../lib/app-env";
import { createRouter } from "../../../lib/openapi";
import { registerCompleteOnboarding } from "./complete-onboarding";
import { registerDeleteMe } from "./delete-me";
import { registerGetMe } from "./get-me";
import { registerInsights } from "./insights";
import { registerRegisterPushToken } from "./register-push-token";
import { registerRemovePushToken } from "./remove-push-token";
import { registerUpdateMe } from "./update-me";
import { registerUsageToday } from "./usage-today";

/** `/api/v1/users`: everything here acts on the caller, so no id ever comes from the client. */
export function createUsersRoutes(guards: MiddlewareHandler<AppEnv>[]) {
  const router = createRouter();
  router.use("*", ...guards);
  // The order is the API document's order.
  for (const register of [
    registerGetMe,
    registerUpdateMe,
    registerCompleteOnboarding,
    registerDeleteMe,
    registerRegisterPushToken,
    registerRemovePushToken,
    registerUsageToday,
    registerInsights,
  ]) {
    register(router);
  }
  return router;
}
