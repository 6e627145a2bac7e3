import type { Feature } from "../../features";
import { openerRoomKind } from "./room";

/** Magic openers (SPEC §5): so far the room their generations stream to. */
export const openersFeature: Feature = {
  rooms: [openerRoomKind],
};
