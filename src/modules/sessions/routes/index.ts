import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../../lib/app-env";
import { createRouter } from "../../../lib/openapi";
import { registerAddMessage } from "./add-message";
import { registerConfirmOcr } from "./confirm-ocr";
import { registerCreateSession } from "./create-session";
import { registerDeleteMessage } from "./delete-message";
import { registerDeleteSession } from "./delete-session";
import { registerGetSession } from "./get-session";
import { registerListSessions } from "./list-sessions";
import { registerRetrySession } from "./retry-session";
import { registerUpdateMessage } from "./update-message";

/** `/api/v1/sessions`: every query is scoped to the caller; another user's id is a 404. */
export function createSessionsRoutes(guards: MiddlewareHandler<AppEnv>[]) {
  const router = createRouter();
  router.use("*", ...guards);
  // The order is the API document's order.
  for (const register of [
    registerCreateSession,
    registerListSessions,
    registerGetSession,
    registerDeleteSession,
    registerConfirmOcr,
    registerRetrySession,
    registerAddMessage,
    registerUpdateMessage,
    registerDeleteMessage,
  ]) {
    register(router);
  }
  return router;
}
