import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { call, callAs, clerkId, forgedToken, json, mintToken, resetDatabase, testDb } from "../../../test/helpers";
import { aiCalls, pushTokens, users } from "../../db/schema";
import { forgetIdentity, resolveIdentity } from "./service";

type PublicUser = { id: string; email: string | null; onboardingCompleted: boolean; onboardingCompletedAt: string | null } & Record<string, unknown>;

async function me(token: string) {
  const response = await callAs(token, "/api/v1/users/me");
  return { response, body: await json<PublicUser>(response) };
}

function pushToken(seed: string) {
  return `ExponentPushToken[${seed.padEnd(22, "x")}]`;
}

describe("identity cache", () => {
  beforeEach(resetDatabase);

  it("maps a Clerk id to the user for 30 s per isolate; then, or once told to forget, a deleted user is refused, not restored", async () => {
    const now = Date.now();
    const session = { clerkUserId: clerkId(), sessionId: undefined, email: undefined, issuedAt: now - 60_000, expiresAt: now + 60_000 };
    const db = testDb();
    const first = await resolveIdentity(db, session, now);
    const deleted = () => db.select({ deletedAt: users.deletedAt }).from(users).where(eq(users.id, first.id)).then(([row]) => row?.deletedAt);
    // Deleted in another isolate: this one's entry answers until it expires...
    await db.update(users).set({ deletedAt: new Date(now - 30_000), deletedBy: "user" }).where(eq(users.id, first.id));
    expect(await resolveIdentity(db, session, now + 29_000)).toEqual(first);
    // ...then the row is read again, and a token older than the deletion gets nothing back.
    await expect(resolveIdentity(db, session, now + 31_000)).rejects.toMatchObject({ code: "ACCOUNT_DELETED" });
    expect(await deleted()).toBeInstanceOf(Date);

    // A sign-in after the deletion restores the account.
    const signedInAgain = { ...session, issuedAt: now - 10_000 };
    expect(await resolveIdentity(db, signedInAgain, now + 32_000)).toEqual(first);
    expect(await deleted()).toBeNull();

    // Deleted in this isolate: forgotten at once, refused on the next request.
    await db.update(users).set({ deletedAt: new Date(now), deletedBy: "user" }).where(eq(users.id, first.id));
    forgetIdentity(session.clerkUserId);
    await expect(resolveIdentity(db, signedInAgain, now + 33_000)).rejects.toMatchObject({ code: "ACCOUNT_DELETED" });
    expect(await deleted()).toBeInstanceOf(Date);
  });

  it("does not cache a user read while a deletion was being handled", async () => {
    const now = Date.now();
    const session = { clerkUserId: clerkId(), sessionId: undefined, email: undefined, issuedAt: now - 60_000, expiresAt: now + 60_000 };
    const db = testDb();
    const first = await resolveIdentity(db, session, now);
    forgetIdentity(session.clerkUserId);
    // A request reads the live row; meanwhile the account is deleted and forgotten here.
    const reading = resolveIdentity(db, session, now);
    forgetIdentity(session.clerkUserId);
    expect(await reading).toEqual(first);
    await db.update(users).set({ deletedAt: new Date(now - 30_000), deletedBy: "user" }).where(eq(users.id, first.id));
    await expect(resolveIdentity(db, session, now + 1_000)).rejects.toMatchObject({ code: "ACCOUNT_DELETED" });
  });
});

describe("authentication on /api/v1/users/*", () => {
  beforeEach(resetDatabase);

  it("provisions a first-seen Clerk user and returns the same user afterwards", async () => {
    const sub = clerkId();
    const token = await mintToken(sub, { email: "first@example.com" });
    const first = await me(token);
    expect(first.response.status).toBe(200);
    expect(first.body).toMatchObject({ success: true, data: { email: "first@example.com", onboardingCompleted: false } });
    const second = await me(token);
    expect(second.body.success && second.body.data.id).toBe(first.body.success && first.body.data.id);
    const rows = await testDb().select().from(users).where(eq(users.clerkId, sub));
    expect(rows).toHaveLength(1);
  });

  it("makes exactly one row when first requests race", async () => {
    const sub = clerkId();
    const token = await mintToken(sub);
    const responses = await Promise.all(Array.from({ length: 8 }, () => callAs(token, "/api/v1/users/me")));
    const ids = new Set<string>();
    for (const response of responses) {
      expect(response.status).toBe(200);
      const body = await json<PublicUser>(response);
      if (body.success) ids.add(body.data.id);
    }
    expect(ids.size).toBe(1);
    expect(await testDb().select().from(users).where(eq(users.clerkId, sub))).toHaveLength(1);
  });

  it("keeps the user but not the email when another account already holds that email", async () => {
    await me(await mintToken(clerkId(), { email: "shared@example.com" }));
    const other = await me(await mintToken(clerkId(), { email: "shared@example.com" }));
    expect(other.response.status).toBe(200);
    expect(other.body.success && other.body.data.email).toBeNull();
  });

  it("refuses a deleted account's still-valid token with 401 ACCOUNT_DELETED, on every route, and keeps the account deleted", async () => {
    const token = await mintToken(clerkId());
    expect((await me(token)).response.status).toBe(200);
    expect((await callAs(token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
    for (const [path, method] of [["/api/v1/users/me", "GET"], ["/api/v1/users/me/usage", "GET"], ["/api/v1/sessions", "GET"], ["/api/v1/users/me", "DELETE"]] as const) {
      const response = await callAs(token, path, { method });
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(await json(response)).toMatchObject({ success: false, error: { code: "ACCOUNT_DELETED" } });
    }
    const [row] = await testDb().select().from(users);
    expect(row).toMatchObject({ deletedAt: expect.any(Date), deletedBy: "user" });
  });

  it("restores an account its owner deleted when they sign in after the deletion, and only then", async () => {
    const sub = clerkId();
    const now = Math.floor(Date.now() / 1000);
    const before = await mintToken(sub, { nowSeconds: now - 120 });
    const first = await me(before);
    expect((await callAs(before, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
    // The deletion happened a minute ago; `before` was issued a minute before that.
    await testDb().update(users).set({ deletedAt: new Date((now - 60) * 1000) }).where(eq(users.clerkId, sub));
    expect((await me(before)).response.status).toBe(401);

    const after = await mintToken(sub, { nowSeconds: now });
    const again = await me(after);
    expect(again.response.status).toBe(200);
    expect(again.body.success && again.body.data.id).toBe(first.body.success && first.body.data.id);
    const [restored] = await testDb().select().from(users);
    expect(restored).toMatchObject({ deletedAt: null, deletedBy: null });
    // Restored for everyone: the older token works again too, until the next deletion.
    expect((await me(before)).response.status).toBe(200);
  });

  it("answers 401 UNAUTHORIZED without a token, with a malformed one, or with another scheme", async () => {
    const attempts: Array<Record<string, string>> = [{}, { Authorization: "Bearer not-a-jwt" }, { Authorization: "Basic dXNlcjpwdw==" }];
    for (const headers of attempts) {
      const response = await call("/api/v1/users/me", { headers });
      expect(response.status).toBe(401);
      expect(await json(response)).toMatchObject({ success: false, error: { code: "UNAUTHORIZED" } });
    }
  });

  it("answers 401 TOKEN_EXPIRED for an expired token, beyond the clock-skew allowance", async () => {
    const token = await mintToken(clerkId(), { nowSeconds: Math.floor(Date.now() / 1000) - 120, ttlSeconds: 60 });
    const response = await callAs(token, "/api/v1/users/me");
    expect(response.status).toBe(401);
    expect(await json(response)).toMatchObject({ error: { code: "TOKEN_EXPIRED" } });
  });

  it("accepts a token that expired within the clock-skew allowance", async () => {
    const token = await mintToken(clerkId(), { nowSeconds: Math.floor(Date.now() / 1000) - 62, ttlSeconds: 60 });
    expect((await callAs(token, "/api/v1/users/me")).status).toBe(200);
  });

  it("answers 401 for a token signed by another key", async () => {
    const forged = await forgedToken();
    const response = await callAs(forged, "/api/v1/users/me");
    expect(response.status).toBe(401);
    expect(await json(response)).toMatchObject({ error: { code: "UNAUTHORIZED" } });
    expect(await testDb().select().from(users)).toHaveLength(0);
  });

  it("answers 401 for a token minted for another authorized party", async () => {
    const token = await mintToken(clerkId(), { azp: "https://evil.example" });
    const response = await callAs(token, "/api/v1/users/me");
    expect(response.status).toBe(401);
    expect(await json(response)).toMatchObject({ error: { code: "UNAUTHORIZED" } });
  });

  it("answers 401, not 500, to a signed token whose user id no row can hold, and ignores an email no row can hold", async () => {
    for (const sub of [`user_${"\u0000"}`, "user_\ud800", "", `user_${crypto.randomUUID().repeat(80)}`]) {
      const response = await callAs(await mintToken(sub), "/api/v1/users/me");
      expect(response.status, JSON.stringify(sub.slice(0, 12))).toBe(401);
      expect(await json(response)).toMatchObject({ error: { code: "UNAUTHORIZED" } });
    }
    expect(await testDb().select().from(users)).toHaveLength(0);
    for (const email of ["a\u0000@example.com", `${crypto.randomUUID().repeat(80)}@example.com`]) {
      const { response, body } = await me(await mintToken(clerkId(), { email }));
      expect(response.status).toBe(200);
      expect(body.success && body.data.email).toBeNull();
    }
  });
});

describe("PUT /api/v1/users/me", () => {
  beforeEach(resetDatabase);

  it("updates profile fields and preferences", async () => {
    const token = await mintToken(clerkId());
    const response = await callAs(token, "/api/v1/users/me", {
      method: "PUT",
      json: { firstName: "Sam", timezone: "Europe/Paris", preferences: { defaultTone: "witty", suggestionCount: 4 } },
    });
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({
      data: { firstName: "Sam", timezone: "Europe/Paris", preferences: { defaultTone: "witty", suggestionCount: 4 } },
    });
    expect((await me(token)).body).toMatchObject({ data: { firstName: "Sam" } });
  });

  it("rejects unknown fields, bad values and an empty update with VALIDATION_ERROR and details", async () => {
    const token = await mintToken(clerkId());
    for (const body of [{ isAdmin: true }, { timezone: "Mars/Olympus" }, { preferences: { suggestionCount: 9 } }, {}]) {
      const response = await callAs(token, "/api/v1/users/me", { method: "PUT", json: body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      const result = await json(response);
      expect(result).toMatchObject({ success: false, error: { code: "VALIDATION_ERROR" } });
      expect((result as { error: { details: { issues: unknown[] } } }).error.details.issues.length).toBeGreaterThan(0);
    }
    expect((await me(token)).body).toMatchObject({ data: { timezone: "UTC", firstName: null } });
  });

  it("answers INVALID_JSON, 415 and 413 for malformed, mistyped and oversized bodies", async () => {
    const token = await mintToken(clerkId());
    const headers = { Authorization: `Bearer ${token}` };
    const malformed = await call("/api/v1/users/me", {
      method: "PUT",
      headers: { ...headers, "Content-Type": "application/json" },
      body: '{"firstName": ',
    });
    expect(malformed.status).toBe(400);
    expect(await json(malformed)).toMatchObject({ error: { code: "INVALID_JSON" } });

    const text = await call("/api/v1/users/me", {
      method: "PUT",
      headers: { ...headers, "Content-Type": "text/plain" },
      body: "firstName=Sam",
    });
    expect(text.status).toBe(415);
    expect(await json(text)).toMatchObject({ error: { code: "UNSUPPORTED_MEDIA_TYPE" } });

    const huge = await call("/api/v1/users/me", {
      method: "PUT",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ firstName: "x".repeat(70 * 1024) }),
    });
    expect(huge.status).toBe(413);
    expect(await json(huge)).toMatchObject({ error: { code: "PAYLOAD_TOO_LARGE" } });
  });
});

describe("POST /api/v1/users/me/onboarding", () => {
  beforeEach(resetDatabase);

  const answers = { firstName: "Alex", gender: "non_binary", lookingFor: "everyone", ageRange: "25-34", datingGoal: "relationship" };

  it("turns answers into profile fields and marks onboarding complete once", async () => {
    const token = await mintToken(clerkId());
    const response = await callAs(token, "/api/v1/users/me/onboarding", { method: "POST", json: answers });
    expect(response.status).toBe(200);
    const body = await json<PublicUser>(response);
    expect(body).toMatchObject({ data: { ...answers, onboardingCompleted: true } });
    const completedAt = body.success ? body.data.onboardingCompletedAt : null;
    expect(completedAt).not.toBeNull();

    const again = await json<PublicUser>(
      await callAs(token, "/api/v1/users/me/onboarding", { method: "POST", json: { ...answers, datingGoal: "casual" } }),
    );
    expect(again).toMatchObject({ data: { datingGoal: "casual", onboardingCompletedAt: completedAt } });
  });

  it("requires every answer", async () => {
    const token = await mintToken(clerkId());
    const { gender: _omitted, ...partial } = answers;
    const response = await callAs(token, "/api/v1/users/me/onboarding", { method: "POST", json: partial });
    expect(response.status).toBe(400);
    expect((await me(token)).body).toMatchObject({ data: { onboardingCompleted: false } });
  });
});

describe("DELETE /api/v1/users/me", () => {
  beforeEach(resetDatabase);

  it("soft-deletes the account and says when it will be purged", async () => {
    const token = await mintToken(clerkId());
    await me(token);
    const response = await callAs(token, "/api/v1/users/me", { method: "DELETE" });
    expect(response.status).toBe(200);
    const body = await json<{ deleted: boolean; purgeAfter: string }>(response);
    expect(body.success && body.data.deleted).toBe(true);
    const purgeInDays = body.success ? (Date.parse(body.data.purgeAfter) - Date.now()) / 86_400_000 : 0;
    expect(purgeInDays).toBeGreaterThan(29.9);
    expect(purgeInDays).toBeLessThan(30.1);
    const [row] = await testDb().select().from(users);
    expect(row?.deletedAt).toBeInstanceOf(Date);
  });
});

describe("push tokens", () => {
  beforeEach(resetDatabase);

  it("registers a token, moves it to a new owner, and lets only the owner remove it", async () => {
    const alice = await mintToken(clerkId());
    const bob = await mintToken(clerkId());
    const token = pushToken("device1");

    const registered = await callAs(alice, "/api/v1/users/me/push-tokens", { method: "POST", json: { token, platform: "ios" } });
    expect(registered.status).toBe(200);
    expect(await json(registered)).toMatchObject({ data: { token, platform: "ios" } });
    // Registering twice is an upsert, not a duplicate.
    await callAs(alice, "/api/v1/users/me/push-tokens", { method: "POST", json: { token, platform: "ios" } });
    expect(await testDb().select().from(pushTokens)).toHaveLength(1);

    // Bob signs in on the same phone: the token is his now.
    await callAs(bob, "/api/v1/users/me/push-tokens", { method: "POST", json: { token, platform: "ios" } });
    const bobUser = await me(bob);
    const [row] = await testDb().select().from(pushTokens);
    expect(row?.userId).toBe(bobUser.body.success && bobUser.body.data.id);

    const path = `/api/v1/users/me/push-tokens/${encodeURIComponent(token)}`;
    const notAlices = await callAs(alice, path, { method: "DELETE" });
    expect(notAlices.status).toBe(404);
    expect(await json(notAlices)).toMatchObject({ error: { code: "NOT_FOUND" } });
    expect(await testDb().select().from(pushTokens)).toHaveLength(1);

    expect((await callAs(bob, path, { method: "DELETE" })).status).toBe(200);
    expect(await testDb().select().from(pushTokens)).toHaveLength(0);
    expect((await callAs(bob, path, { method: "DELETE" })).status).toBe(404);
  });

  it("rejects tokens that are not Expo push tokens", async () => {
    const alice = await mintToken(clerkId());
    for (const body of [{ token: "fcm:abc", platform: "android" }, { token: pushToken("ok"), platform: "blackberry" }]) {
      const response = await callAs(alice, "/api/v1/users/me/push-tokens", { method: "POST", json: body });
      expect(response.status).toBe(400);
      expect(await json(response)).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    }
    const bad = await callAs(alice, "/api/v1/users/me/push-tokens/not-a-token", { method: "DELETE" });
    expect(bad.status).toBe(400);
  });
});

describe("GET /api/v1/users/me/usage", () => {
  beforeEach(resetDatabase);

  it("is zero for a new user", async () => {
    const response = await callAs(await mintToken(clerkId()), "/api/v1/users/me/usage");
    expect(await json(response)).toMatchObject({
      data: { calls: 0, costUsd: 0, budgetUsd: 0.5, remainingUsd: 0.5, byKind: {} },
    });
  });

  it("sums only the caller's calls of the current UTC day", async () => {
    const alice = await mintToken(clerkId());
    const bob = await mintToken(clerkId());
    const aliceId = ((await me(alice)).body as { data: PublicUser }).data.id;
    const bobId = ((await me(bob)).body as { data: PublicUser }).data.id;
    const yesterday = new Date(Date.now() - 26 * 3_600_000);
    const base = { provider: "openai", model: "gpt-4o", status: "succeeded" as const };
    await testDb()
      .insert(aiCalls)
      .values([
        { ...base, userId: aliceId, kind: "suggestions", costUsd: "0.012000" },
        { ...base, userId: aliceId, kind: "suggestions", costUsd: "0.003500" },
        { ...base, userId: aliceId, kind: "ocr", costUsd: "0.001000" },
        { ...base, userId: aliceId, kind: "ocr", costUsd: "0.200000", createdAt: yesterday },
        { ...base, userId: bobId, kind: "opener", costUsd: "0.100000" },
      ]);
    const response = await callAs(alice, "/api/v1/users/me/usage");
    expect(await json(response)).toMatchObject({
      data: {
        date: new Date().toISOString().slice(0, 10),
        calls: 3,
        costUsd: 0.0165,
        remainingUsd: 0.4835,
        byKind: { suggestions: { calls: 2, costUsd: 0.0155 }, ocr: { calls: 1, costUsd: 0.001 } },
      },
    });
  });
});
