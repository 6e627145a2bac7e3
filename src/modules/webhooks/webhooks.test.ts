import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, clerkId, json, mintToken, resetDatabase, testDb } from "../../../test/helpers";
import { clerkUser, postClerkWebhook as post, signedWebhook as signed, signedWebhookBody } from "../../../test/webhooks";
import { openSocket } from "../../../test/ws";
import { users, webhookEvents } from "../../db/schema";

describe("POST /api/webhooks/clerk", () => {
  beforeEach(resetDatabase);

  it("creates, updates and soft-deletes users from Clerk events", async () => {
    const id = clerkId();
    const created = await post(signed({ type: "user.created", data: clerkUser(id) }).init);
    expect(created.status).toBe(200);
    expect(await json(created)).toMatchObject({ data: { received: true, duplicate: false, handled: true } });
    let [row] = await testDb().select().from(users).where(eq(users.clerkId, id));
    expect(row).toMatchObject({ email: "robin@example.com", firstName: "Robin", lastName: "Lee", deletedAt: null });

    await post(signed({ type: "user.updated", data: clerkUser(id, { first_name: "Rob" }) }).init);
    [row] = await testDb().select().from(users).where(eq(users.clerkId, id));
    expect(row?.firstName).toBe("Rob");

    await post(signed({ type: "user.deleted", data: { id, deleted: true, object: "user" } }).init);
    [row] = await testDb().select().from(users).where(eq(users.clerkId, id));
    expect(row).toMatchObject({ deletedAt: expect.any(Date), deletedBy: "clerk" });
  });

  it("closes the deleted account's open sockets at once (4401 ACCOUNT_DELETED)", async () => {
    const sub = clerkId();
    const token = await mintToken(sub);
    const created = await json<{ id: string }>(
      await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages: [{ sender: "match", text: "Hi there" }] } }),
    );
    if (!created.success) throw new Error("no session");
    const socket = await openSocket(`/api/v1/sessions/${created.data.id}/ws`);
    socket.send({ type: "authenticate", token });
    await socket.frame("authenticated");

    const response = await post(signed({ type: "user.deleted", data: { id: sub, deleted: true, object: "user" } }).init);
    expect(await json(response)).toEqual({ success: true, data: { received: true, duplicate: false, handled: true } });
    expect(await socket.closed()).toMatchObject({ code: 4401, reason: "ACCOUNT_DELETED" });
  });

  it("makes a Clerk deletion final: no token brings the account back, not even one issued after it", async () => {
    const sub = clerkId();
    const now = Math.floor(Date.now() / 1000);
    const token = await mintToken(sub, { nowSeconds: now - 120 });
    expect((await callAs(token, "/api/v1/users/me")).status).toBe(200);
    expect((await post(signed({ type: "user.deleted", data: { id: sub, deleted: true, object: "user" } }).init)).status).toBe(200);

    const refused = await callAs(token, "/api/v1/users/me");
    expect(refused.status).toBe(401);
    expect(await json(refused)).toMatchObject({ error: { code: "ACCOUNT_DELETED" } });
    // Even a token newer than the deletion (which would restore an account its owner deleted).
    await testDb().update(users).set({ deletedAt: new Date((now - 60) * 1000) }).where(eq(users.clerkId, sub));
    expect((await callAs(await mintToken(sub, { nowSeconds: now }), "/api/v1/users/me")).status).toBe(401);
    const rows = await testDb().select().from(users).where(eq(users.clerkId, sub));
    expect(rows).toEqual([expect.objectContaining({ deletedAt: expect.any(Date), deletedBy: "clerk" })]);
  });

  it("keeps Clerk's word over the owner's: an account deleted by its owner, then by Clerk, is never restored", async () => {
    const sub = clerkId();
    const now = Math.floor(Date.now() / 1000);
    const token = await mintToken(sub, { nowSeconds: now - 120 });
    expect((await callAs(token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
    const [deleted] = await testDb().select().from(users).where(eq(users.clerkId, sub));
    await post(signed({ type: "user.deleted", data: { id: sub, deleted: true, object: "user" } }).init);
    const [row] = await testDb().select().from(users).where(eq(users.clerkId, sub));
    // The purge clock keeps running from the first deletion.
    expect(row).toMatchObject({ deletedAt: deleted!.deletedAt, deletedBy: "clerk" });
    await testDb().update(users).set({ deletedAt: new Date((now - 60) * 1000) }).where(eq(users.clerkId, sub));
    expect((await callAs(await mintToken(sub, { nowSeconds: now }), "/api/v1/users/me")).status).toBe(401);
  });

  it("records the deletion of a user it never saw, so that a token still in flight cannot provision one", async () => {
    const sub = clerkId();
    const token = await mintToken(sub);
    await post(signed({ type: "user.deleted", data: { id: sub, deleted: true, object: "user" } }).init);
    const response = await callAs(token, "/api/v1/users/me");
    expect(response.status).toBe(401);
    expect(await json(response)).toMatchObject({ error: { code: "ACCOUNT_DELETED" } });
    expect(await testDb().select().from(users).where(eq(users.clerkId, sub))).toEqual([
      expect.objectContaining({ email: null, deletedAt: expect.any(Date), deletedBy: "clerk" }),
    ]);
  });

  it("treats a replayed delivery as a 200 no-op", async () => {
    const id = clerkId();
    const delivery = signed({ type: "user.created", data: clerkUser(id) });
    expect((await post(delivery.init)).status).toBe(200);
    // Meanwhile the user renamed themselves in the app.
    await testDb().update(users).set({ firstName: "Changed in app" }).where(eq(users.clerkId, id));

    const replay = await post(delivery.init);
    expect(replay.status).toBe(200);
    expect(await json(replay)).toMatchObject({ data: { duplicate: true, handled: false } });
    const [row] = await testDb().select().from(users).where(eq(users.clerkId, id));
    expect(row?.firstName).toBe("Changed in app");
    expect(await testDb().select().from(webhookEvents)).toHaveLength(1);
  });

  it("rejects a bad, missing or stale signature with 400 and writes nothing", async () => {
    const payload = { type: "user.created", data: clerkUser(clerkId()) };
    const otherSecret = `whsec_${btoa("another secret entirely, 32 bytes")}`;
    const attempts: RequestInit[] = [
      signed(payload, { secret: otherSecret }).init,
      signed(payload, { timestamp: new Date(Date.now() - 10 * 60_000) }).init,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) },
    ];
    // A body changed after signing.
    const tampered = signed(payload).init;
    attempts.push({ ...tampered, body: tampered.body.replace("Robin", "Mallory") });

    for (const init of attempts) {
      const response = await post(init);
      expect(response.status).toBe(400);
      expect(await json(response)).toMatchObject({ error: { code: "WEBHOOK_SIGNATURE_INVALID" } });
    }
    expect(await testDb().select().from(users)).toHaveLength(0);
    expect(await testDb().select().from(webhookEvents)).toHaveLength(0);
  });

  it("refuses a body over the webhook limit with 413 before verifying or writing anything", async () => {
    const delivery = signed({ type: "user.created", data: clerkUser(clerkId(), { padding: "x".repeat(600 * 1024) }) });
    const response = await post(delivery.init);
    expect(response.status).toBe(413);
    expect(await json(response)).toMatchObject({ error: { code: "PAYLOAD_TOO_LARGE" } });
    expect(await testDb().select().from(webhookEvents)).toHaveLength(0);
  });

  it("acknowledges unknown event types without acting on them", async () => {
    const response = await post(signed({ type: "session.created", data: { id: "sess_1" } }).init);
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ data: { received: true, handled: false } });
    expect(await testDb().select().from(users)).toHaveLength(0);
  });

  it("answers 400 VALIDATION_ERROR for a signed user event without a user id", async () => {
    const response = await post(signed({ type: "user.created", data: { first_name: "No id" } }).init);
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    expect(await testDb().select().from(webhookEvents)).toHaveLength(0);
  });

  it("answers 400, not 500, to a signed body that is not an event, or whose ids or email no key can hold", async () => {
    const long = "a".repeat(1_500) + crypto.randomUUID().repeat(40);
    const attempts: Array<[string, RequestInit]> = [
      ["a JSON string", signedWebhookBody('"user.created"').init],
      ["an array", signedWebhookBody("[]").init],
      ["no type", signed({ data: { id: clerkId() } }).init],
      ["NUL in a name", signed({ type: "user.created", data: clerkUser(clerkId(), { first_name: "Ro\u0000bin" }) }).init],
      ["an overlong user id", signed({ type: "user.created", data: clerkUser(long) }).init],
      ["an overlong email", signed({ type: "user.updated", data: clerkUser(clerkId(), { email_addresses: [{ id: "idn_2", email_address: `${long}@example.com` }] }) }).init],
      ["an overlong svix-id", signed({ type: "user.created", data: clerkUser(clerkId()) }, { svixId: long }).init],
    ];
    for (const [what, init] of attempts) {
      const response = await post(init);
      expect(response.status, what).toBe(400);
      expect(await json(response), what).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    }
    expect(await testDb().select().from(webhookEvents)).toHaveLength(0);
    expect(await testDb().select().from(users)).toHaveLength(0);
  });
});
