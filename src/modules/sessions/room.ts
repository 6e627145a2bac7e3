import { and, asc, eq, gt } from "drizzle-orm";
import { sessions } from "../../db/schema";
import type { RoomKind } from "../../realtime/kinds";
import type { RoomAddress } from "../../realtime/protocol";
import { liveUserIdByClerkId } from "../users/service";
import { findLiveSession } from "./live";

/** A session's room: its status, OCR result, phase and suggestion stream (SPEC §6). */
export const sessionRoomKind: RoomKind = {
  name: "session",
  path: "/sessions/:id/ws",
  title: "a session",
  async owns(db, id, clerkUserId) {
    return (await findLiveSession(db, { sessionId: id, userId: liveUserIdByClerkId(clerkUserId) })) !== undefined;
  },
  async roomsOf(db, userId, page) {
    const rows = await db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(eq(sessions.userId, userId), page.afterId === undefined ? undefined : gt(sessions.id, page.afterId)))
      .orderBy(asc(sessions.id))
      .limit(page.limit);
    return rows.map((row) => row.id);
  },
};

export function sessionRoom(sessionId: string): RoomAddress {
  return { kind: sessionRoomKind.name, id: sessionId };
}
