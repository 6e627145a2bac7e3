import { sessions } from "../../db/schema";
import { idsOwnedBy } from "../../lib/db";
import type { RoomKind } from "../../realtime/kinds";
import type { RoomAddress } from "../../realtime/protocol";
import { liveUserIdByClerkId } from "../users/service";
import { findLiveSession } from "./live";

/** A session's room: its status, OCR result, phase and suggestion stream (SPEC §6). */
export const sessionRoomKind: RoomKind = {
  name: "session",
  path: "/sessions/:id/ws",
  title: "a session",
  notFound: "SESSION_NOT_FOUND",
  async owns(db, id, clerkUserId) {
    return (await findLiveSession(db, { sessionId: id, userId: liveUserIdByClerkId(clerkUserId) }))?.userId;
  },
  roomsOf: (db, userId, page) => idsOwnedBy(db, { id: sessions.id, owner: sessions.userId }, userId, page),
};

export function sessionRoom(sessionId: string): RoomAddress {
  return { kind: sessionRoomKind.name, id: sessionId };
}
