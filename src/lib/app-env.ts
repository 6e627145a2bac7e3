import type { users } from "../db/schema";
import type { Database } from "./db";
import type { AppConfig, Bindings } from "./env";
import type { Logger } from "./logger";

export type User = typeof users.$inferSelect;

/**
 * Who is calling: what every route needs. Deliberately not the whole row, which may be cached
 * for a few seconds (see users/service.ts): read the row when you need its fields.
 */
export type UserIdentity = Pick<User, "id" | "clerkId">;

/** Hono's type parameter for every router: typed bindings and per-request variables. */
export type AppEnv = {
  Bindings: Bindings;
  Variables: {
    requestId: string;
    logger: Logger;
    /** Set by `withServices` on every route but health. */
    config: AppConfig;
    db: Database;
    /** Set by `requireAuth`. */
    user: UserIdentity;
    auth: { clerkUserId: string; sessionId: string | undefined; expiresAt: number };
  };
};
