import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { clerkId, resetDatabase, testDb } from "../../../test/helpers";
import { messages, sessions, users } from "../../db/schema";
import { liveUserIdByClerkId } from "../users/service";
import { findLiveSession, requireLiveSession } from "./live";
import { conversationLength, conversationToGenerate } from "./messages";
import { sessionRoomKind } from "./room";

async function seed(options: { status?: "ready" | "generating"; messages?: string[] } = {}) {
  const db = testDb();
  const clerk = clerkId();
  const [user] = await db.insert(users).values({ clerkId: clerk }).returning();
  const [session] = await db.insert(sessions).values({ userId: user!.id, type: "text", status: options.status ?? "ready" }).returning();
  const texts = options.messages ?? ["hey", "hi there"];
  if (texts.length > 0) {
    await db.insert(messages).values(texts.map((text, position) => ({ sessionId: session!.id, sender: position % 2 ? ("user" as const) : ("match" as const), text, position, source: "manual" as const })));
  }
  return { clerk, userId: user!.id, sessionId: session!.id };
}

describe("the live session of a user", () => {
  beforeEach(resetDatabase);

  it("is found by id and owner, or by id and the owner's Clerk id, and never once deleted or someone else's", async () => {
    const db = testDb();
    const mine = await seed();
    const theirs = await seed();
    expect(await findLiveSession(db, { sessionId: mine.sessionId, userId: mine.userId })).toMatchObject({ id: mine.sessionId });
    expect(await findLiveSession(db, { sessionId: mine.sessionId, userId: liveUserIdByClerkId(mine.clerk) })).toMatchObject({ id: mine.sessionId });
    expect(await findLiveSession(db, { sessionId: mine.sessionId, userId: theirs.userId })).toBeUndefined();
    expect(await findLiveSession(db, { sessionId: mine.sessionId, userId: liveUserIdByClerkId(theirs.clerk) })).toBeUndefined();
    expect(await findLiveSession(db, { sessionId: mine.sessionId, userId: liveUserIdByClerkId(clerkId()) })).toBeUndefined();
    await expect(requireLiveSession(db, { sessionId: "nosuchsession", userId: mine.userId })).rejects.toMatchObject({ code: "SESSION_NOT_FOUND" });

    // A deleted owner has no live session, whatever the session's own state.
    await db.update(users).set({ deletedAt: new Date(), deletedBy: "user" }).where(eq(users.id, mine.userId));
    expect(await findLiveSession(db, { sessionId: mine.sessionId, userId: liveUserIdByClerkId(mine.clerk) })).toBeUndefined();
    expect(await sessionRoomKind.owns(db, mine.sessionId, mine.clerk)).toBeUndefined();
    expect(await sessionRoomKind.owns(db, theirs.sessionId, theirs.clerk)).toBe(theirs.userId);

    await db.update(sessions).set({ deletedAt: new Date() }).where(eq(sessions.id, theirs.sessionId));
    await expect(requireLiveSession(db, { sessionId: theirs.sessionId, userId: theirs.userId })).rejects.toMatchObject({ code: "SESSION_NOT_FOUND" });
    expect(await sessionRoomKind.owns(db, theirs.sessionId, theirs.clerk)).toBeUndefined();
  });

  it("counts its messages (0 for an empty conversation), and is a 404 for anyone else or once deleted", async () => {
    const db = testDb();
    const full = await seed({ messages: ["a", "b", "c"] });
    const empty = await seed({ messages: [] });
    expect(await conversationLength(db, { sessionId: full.sessionId, userId: full.userId })).toBe(3);
    expect(await conversationLength(db, { sessionId: empty.sessionId, userId: empty.userId })).toBe(0);
    await expect(conversationLength(db, { sessionId: full.sessionId, userId: empty.userId })).rejects.toMatchObject({ code: "SESSION_NOT_FOUND" });
    await db.update(sessions).set({ deletedAt: new Date() }).where(eq(sessions.id, full.sessionId));
    await expect(conversationLength(db, { sessionId: full.sessionId, userId: full.userId })).rejects.toMatchObject({ code: "SESSION_NOT_FOUND" });
  });

  it("hands the suggestion job the owner and the conversation in order, only while the session is generating", async () => {
    const db = testDb();
    const generating = await seed({ status: "generating", messages: ["first", "second", "third"] });
    // Stored out of order: the job must still read them by position.
    await db.update(messages).set({ position: 10 }).where(eq(messages.text, "first"));
    await db.update(messages).set({ position: 0 }).where(eq(messages.text, "third"));
    await db.update(messages).set({ position: 2 }).where(eq(messages.text, "first"));
    expect(await conversationToGenerate(db, generating.sessionId)).toEqual({
      userId: generating.userId,
      conversation: [
        { sender: "match", text: "third" },
        { sender: "user", text: "second" },
        { sender: "match", text: "first" },
      ],
    });
    const ready = await seed({ status: "ready" });
    expect(await conversationToGenerate(db, ready.sessionId)).toBeUndefined();
    expect(await conversationToGenerate(db, "nosuchsession")).toBeUndefined();
  });
});
