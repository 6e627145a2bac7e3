import { and, eq, sql } from "drizzle-orm";
import { magicOpeners } from "../../db/schema";
import type { RoomKind } from "../../realtime/kinds";
import { liveUserIdByClerkId } from "../users/service";

/** A magic-opener generation's room: its streamed openers (SPEC §6). */
export const openerRoomKind: RoomKind = {
  name: "opener",
  path: "/magic-openers/generations/:id/ws",
  title: "a magic-opener generation",
  async owns(db, id, clerkUserId) {
    const [row] = await db
      .select({ one: sql<number>`1` })
      .from(magicOpeners)
      .where(and(eq(magicOpeners.generationId, id), eq(magicOpeners.userId, liveUserIdByClerkId(clerkUserId))))
      .limit(1);
    return row !== undefined;
  },
};
