import { and, eq, isNull, sql } from "drizzle-orm";
import { magicOpeners, sessions, users } from "../db/schema";
import type { Database } from "../lib/db";
import type { RoomAddress } from "./protocol";

/**
 * Whether the live (not deleted) user with this Clerk id owns the room's session or opener
 * generation. A missing room and someone else's room are the same answer: no.
 */
export async function ownsRoom(db: Database, room: RoomAddress, clerkUserId: string): Promise<boolean> {
  if (room.kind === "session") {
    const [row] = await db
      .select({ one: sql<number>`1` })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.id, room.id), isNull(sessions.deletedAt), eq(users.clerkId, clerkUserId), isNull(users.deletedAt)))
      .limit(1);
    return row !== undefined;
  }
  const [row] = await db
    .select({ one: sql<number>`1` })
    .from(magicOpeners)
    .innerJoin(users, eq(users.id, magicOpeners.userId))
    .where(and(eq(magicOpeners.generationId, room.id), eq(users.clerkId, clerkUserId), isNull(users.deletedAt)))
    .limit(1);
  return row !== undefined;
}
