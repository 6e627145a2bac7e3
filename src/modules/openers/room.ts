import { and, eq, isNull, sql } from "drizzle-orm";
import { magicOpeners, users } from "../../db/schema";
import type { RoomKind } from "../../realtime/kinds";

/** A magic-opener generation's room: its streamed openers (SPEC §6). */
export const openerRoomKind: RoomKind = {
  name: "opener",
  path: "/magic-openers/generations/:id/ws",
  title: "a magic-opener generation",
  async owns(db, id, clerkUserId) {
    const [row] = await db
      .select({ one: sql<number>`1` })
      .from(magicOpeners)
      .innerJoin(users, eq(users.id, magicOpeners.userId))
      .where(and(eq(magicOpeners.generationId, id), eq(users.clerkId, clerkUserId), isNull(users.deletedAt)))
      .limit(1);
    return row !== undefined;
  },
};

