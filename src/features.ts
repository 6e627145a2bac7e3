import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./lib/app-env";
import type { createRouter } from "./lib/openapi";
import type { JobDefinition } from "./modules/jobs/definition";
import { healthFeature } from "./modules/health/feature";
import { notificationsFeature } from "./modules/notifications/feature";
import { openersFeature } from "./modules/openers/feature";
import { privacyFeature } from "./modules/privacy/feature";
import { sessionsFeature } from "./modules/sessions/feature";
import { suggestionsFeature } from "./modules/suggestions/feature";
import { tipsFeature } from "./modules/tips/feature";
import { uploadsFeature } from "./modules/uploads/feature";
import { usersFeature } from "./modules/users/feature";
import { webhooksFeature } from "./modules/webhooks/feature";
import type { RoomKind } from "./realtime/kinds";

/** The guard chains a feature's routes choose from; the app builds each once. */
export type Guards = {
  /** Config and database on the context; nothing else (signed URLs, webhooks). */
  services: MiddlewareHandler<AppEnv>[];
  /** `services`, then a verified Clerk session (`c.var.user`), then the per-user rate limit. */
  authenticated: MiddlewareHandler<AppEnv>[];
  /** The AI rate tier, added after `authenticated` on routes that start model calls. */
  ai: MiddlewareHandler<AppEnv>[];
  /** The per-IP rate limit, for routes no user signs. */
  ip: MiddlewareHandler<AppEnv>[];
};

/**
 * What a feature folder contributes: routers (each mounted at its base path), the QStash jobs
 * it owns (served at `/jobs/<name>`, scheduled when they declare a schedule), and the room
 * kinds whose sockets it answers for. A new feature is one folder plus one line below.
 */
export type Feature = {
  routes?: ReadonlyArray<{ base: string; create(guards: Guards): ReturnType<typeof createRouter> }>;
  jobs?: ReadonlyArray<JobDefinition>;
  rooms?: ReadonlyArray<RoomKind>;
};

/** Every feature, in the order their routes are mounted. */
export const features: ReadonlyArray<Feature> = [
  healthFeature,
  usersFeature,
  uploadsFeature,
  suggestionsFeature,
  sessionsFeature,
  openersFeature,
  tipsFeature,
  webhooksFeature,
  notificationsFeature,
  privacyFeature,
];

export const jobsOf = (list: ReadonlyArray<Feature>) => list.flatMap((feature) => feature.jobs ?? []);
export const roomKindsOf = (list: ReadonlyArray<Feature>) => list.flatMap((feature) => feature.rooms ?? []);
