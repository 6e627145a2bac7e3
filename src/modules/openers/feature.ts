import type { Feature } from "../../features";
import { openerJob, openerSweepJob } from "./job";
import { openerRoomKind } from "./room";
import { createOpenerRoutes } from "./routes";

/** Magic openers (SPEC §4–6): the routes, the job that writes a generation's openers, and the room they stream to. */
export const openersFeature: Feature = {
  routes: [{ base: "/api/v1/magic-openers", create: (guards) => createOpenerRoutes({ authenticated: guards.authenticated, ai: guards.ai }) }],
  jobs: [openerJob, openerSweepJob],
  rooms: [openerRoomKind],
};
