import { and, eq, isNull, sql } from "drizzle-orm";
import { sessions, users } from "../../db/schema";
import type { RoomKind } from "../../realtime/kinds";
import type { RoomAddress } from "../../realtime/protocol";

/** A session's room: its status, OCR result, phase and suggestion stream (SPEC §6). */
export const sessionRoomKind: RoomKind = {
  name: "session",
  path: "/sessions/:id/ws",
  title: "a session",
  async owns(db, id, clerkUserId) {
    const [row] = await db
      .select({ one: sql<number>`1` })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.id, id), isNull(sessions.deletedAt), eq(users.clerkId, clerkUserId), isNull(users.deletedAt)))
      .limit(1);
    return row !== undefined;
  },
};

export function sessionRoom(sessionId: string): RoomAddress {
  return { kind: sessionRoomKind.name, id: sessionId };
}
