import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { clerkId, resetDatabase, testDb } from "../../../test/helpers";
import { openerGenerations, users } from "../../db/schema";
import { openerRoomKind } from "./room";

describe("the opener room kind", () => {
  beforeEach(resetDatabase);

  it("belongs to the live user whose generation it streams — from the moment the generation is written, before any opener — to no one else, and to no one once they are deleted", async () => {
    const db = testDb();
    const owner = clerkId();
    const stranger = clerkId();
    const [user] = await db.insert(users).values({ clerkId: owner }).returning();
    await db.insert(users).values({ clerkId: stranger });
    await db.insert(openerGenerations).values({ id: "gen000000000000000000001", userId: user!.id, profile: { bio: "climber" }, count: 3 });

    // Yes is the owner's user id (the socket registry's key), no is undefined.
    expect(await openerRoomKind.owns(db, "gen000000000000000000001", owner)).toBe(user!.id);
    expect(await openerRoomKind.owns(db, "gen000000000000000000001", stranger)).toBeUndefined();
    expect(await openerRoomKind.owns(db, "gen000000000000000000001", clerkId())).toBeUndefined();
    expect(await openerRoomKind.owns(db, "gen000000000000000000002", owner)).toBeUndefined();
    await db.update(users).set({ deletedAt: new Date(), deletedBy: "clerk" }).where(eq(users.id, user!.id));
    expect(await openerRoomKind.owns(db, "gen000000000000000000001", owner)).toBeUndefined();
  });
});
