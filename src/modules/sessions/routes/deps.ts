import type { Context } from "hono";
import { aiEngineFor } from "../../../ai/engine";
import type { AppEnv } from "../../../lib/app-env";
import { createJobPublisher } from "../../../lib/jobs";
import { createBroadcast } from "../../../realtime/rooms";
import type { SessionDeps } from "../service";

/** What the session service needs, from the request. */
export function depsOf(c: Context<AppEnv>): SessionDeps {
  return {
    db: c.var.db,
    bucket: c.env.IMAGES,
    broadcast: createBroadcast(c.env, c.var.logger),
    publishJob: createJobPublisher(c.var.config),
    assertWithinBudget: (userId) => aiEngineFor(c.var.config, c.var.db).budget.assertWithinBudget(userId),
    publicBaseUrl: c.var.config.PUBLIC_BASE_URL,
    logger: c.var.logger,
    config: c.var.config,
  };
}
