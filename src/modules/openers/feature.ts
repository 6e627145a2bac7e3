import type { Feature } from "../../features";
import { openerJob, openerSweepJob } from "./job";
import { openerRoomKind } from "./room";

/** Magic openers (SPEC §4–6): the job that writes a generation's openers, and the room they stream to. */
export const openersFeature: Feature = {
  jobs: [openerJob, openerSweepJob],
  rooms: [openerRoomKind],
};
