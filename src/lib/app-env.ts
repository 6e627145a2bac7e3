import type { Bindings } from "./env";
import type { Logger } from "./logger";

/** Hono's type parameter for every router: typed bindings and per-request variables. */
export type AppEnv = {
  Bindings: Bindings;
  Variables: { requestId: string; logger: Logger };
};
