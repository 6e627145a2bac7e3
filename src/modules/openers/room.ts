import { and, eq } from "drizzle-orm";
import { openerGenerations } from "../../db/schema";
import { idsOwnedBy } from "../../lib/db";
import type { RoomKind } from "../../realtime/kinds";
import type { RoomAddress } from "../../realtime/protocol";
import { liveUserIdByClerkId } from "../users/service";

/**
 * A magic-opener generation's room: its streamed openers (SPEC §6). The generation row is
 * written before the 202, so a socket opened right after it is accepted.
 */
export const openerRoomKind: RoomKind = {
  name: "opener",
  path: "/magic-openers/generations/:id/ws",
  title: "a magic-opener generation",
  notFound: "NOT_FOUND",
  async owns(db, id, clerkUserId) {
    const [row] = await db
      .select({ userId: openerGenerations.userId })
      .from(openerGenerations)
      .where(and(eq(openerGenerations.id, id), eq(openerGenerations.userId, liveUserIdByClerkId(clerkUserId))))
      .limit(1);
    return row?.userId;
  },
  roomsOf: (db, userId, page) => idsOwnedBy(db, { id: openerGenerations.id, owner: openerGenerations.userId }, userId, page),
};

export function openerRoom(generationId: string): RoomAddress {
  return { kind: openerRoomKind.name, id: generationId };
}
