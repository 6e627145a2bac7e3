import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { call, callAs, clearBucket, dropNextDatabaseRequests, droppingDb, json, putUpload, resetDatabase, signedInUser, storedKeys, testConfig, testDb, uploadGrant } from "../../../test/helpers";
import { pngBytes } from "../../../test/images";
import { sessionImages } from "../../db/schema";
import { unreachableDatabaseError } from "../../lib/db";
import { toHex } from "../../lib/encoding";
import { AppError } from "../../lib/errors";
import { signedUploadQuerySchema } from "./schemas";
import { createUploadUrl, receiveUpload } from "./service";

async function hex(bytes: Uint8Array): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", bytes));
}

/** No object, and no row holding an upload (a URL's own row stays: it counts against the quota until it expires). */
async function expectNothingStored() {
  expect(await storedKeys()).toEqual([]);
  const rows = await testDb().select().from(sessionImages);
  expect(rows.filter((row) => row.uploadedAt !== null || row.receivingAt !== null || row.sha256 !== null)).toEqual([]);
}

describe("uploads", () => {
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
  });

  it("hands out a short-lived URL namespaced by the user, then stores the image in R2 with its size and hash", async () => {
    const { token, userId } = await signedInUser();
    const grant = await uploadGrant(token, "image/png", 4096);
    expect(grant).toMatchObject({ method: "PUT", headers: { "Content-Type": "image/png" } });
    expect(grant.key).toMatch(new RegExp(`^u/${userId}/[A-Za-z0-9_-]{22}\\.png$`));
    const ttl = Date.parse(grant.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(250_000);
    expect(ttl).toBeLessThanOrEqual(300_000);
    expect(new URL(grant.uploadUrl).origin).toBe(new URL(testConfig().PUBLIC_BASE_URL).origin);

    const bytes = pngBytes(4096);
    const response = await putUpload(grant.uploadUrl, bytes);
    expect(response.status).toBe(201);
    const sha256 = await hex(bytes);
    expect(await json(response)).toEqual({ success: true, data: { key: grant.key, contentType: "image/png", size: 4096, sha256 } });

    const object = await env.IMAGES.get(grant.key);
    expect(object?.size).toBe(4096);
    expect(object?.httpMetadata?.contentType).toBe("image/png");
    expect(await hex(new Uint8Array(await object!.arrayBuffer()))).toBe(sha256);
    const [row] = await testDb().select().from(sessionImages).where(eq(sessionImages.r2Key, grant.key));
    expect(row).toMatchObject({ userId, sessionId: null, sizeBytes: 4096, sha256, contentType: "image/png" });
    expect(row?.uploadedAt).toBeInstanceOf(Date);
  });

  it("accepts jpeg, webp and heic by their signatures", async () => {
    const { token } = await signedInUser();
    const heads: Record<string, number[]> = {
      "image/jpeg": [0xff, 0xd8, 0xff, 0xe0],
      "image/webp": [...new TextEncoder().encode("RIFF"), 0, 0, 0, 0, ...new TextEncoder().encode("WEBP")],
      "image/heic": [0, 0, 0, 0x18, ...new TextEncoder().encode("ftypheic")],
    };
    for (const [type, head] of Object.entries(heads)) {
      const bytes = new Uint8Array(512);
      bytes.set(head);
      const grant = await uploadGrant(token, type, 512);
      expect((await putUpload(grant.uploadUrl, bytes, { "Content-Type": type })).status).toBe(201);
    }
    expect(await storedKeys()).toHaveLength(3);
  });

  it("refuses to sign other types, empty or oversized images, and anonymous callers", async () => {
    const { token } = await signedInUser();
    for (const query of ["contentType=image/gif&size=10", "contentType=image/png&size=0", `contentType=image/png&size=${10 * 1024 * 1024 + 1}`, "contentType=image/png"]) {
      const response = await callAs(token, `/api/v1/sessions/upload-url?${query}`);
      expect(response.status).toBe(400);
      expect(await json(response)).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
    }
    expect((await call("/api/v1/sessions/upload-url?contentType=image/png&size=10")).status).toBe(401);
  });

  it("answers 403 UPLOAD_URL_INVALID to an expired URL and stores nothing", async () => {
    const { userId } = await signedInUser();
    const grant = await createUploadUrl(testConfig(), userId, { contentType: "image/png", size: 2048 }, Date.now() - 301_000);
    const response = await putUpload(grant.uploadUrl, pngBytes());
    expect(response.status).toBe(403);
    expect(await json(response)).toMatchObject({ error: { code: "UPLOAD_URL_INVALID" } });
    await expectNothingStored();
  });

  it("answers 403 UPLOAD_URL_INVALID to any tampering with the URL", async () => {
    const { token } = await signedInUser();
    const other = await signedInUser();
    const grant = await uploadGrant(token);
    const url = new URL(grant.uploadUrl);
    const tampered = [
      (u: URL) => u.searchParams.set("size", "4096"),
      (u: URL) => u.searchParams.set("type", "image/jpeg"),
      (u: URL) => u.searchParams.set("expires", String(Number(u.searchParams.get("expires")) + 3600)),
      (u: URL) => u.searchParams.set("sig", `${u.searchParams.get("sig")!.startsWith("A") ? "B" : "A"}${u.searchParams.get("sig")!.slice(1)}`),
      (u: URL) => u.searchParams.delete("sig"),
      (u: URL) => (u.pathname = u.pathname.replace(/\/u\/[^/]+\//, `/u/${other.userId}/`)),
      (u: URL) => (u.pathname = u.pathname.replace(/\.png$/, ".jpg")),
    ];
    for (const tamper of tampered) {
      const copy = new URL(url);
      tamper(copy);
      const size = Number(copy.searchParams.get("size") ?? 2048);
      const response = await putUpload(copy.toString(), pngBytes(size), { "Content-Type": copy.searchParams.get("type") ?? "image/png" });
      expect(response.status, copy.toString()).toBe(403);
      expect(await json(response)).toMatchObject({ error: { code: "UPLOAD_URL_INVALID" } });
    }
    await expectNothingStored();
  });

  it("answers 409 to a second PUT on the same key and keeps the first image", async () => {
    const { token } = await signedInUser();
    const grant = await uploadGrant(token);
    const first = pngBytes();
    expect((await putUpload(grant.uploadUrl, first)).status).toBe(201);
    const second = pngBytes();
    second[100] = 7;
    const response = await putUpload(grant.uploadUrl, second);
    expect(response.status).toBe(409);
    expect(await json(response)).toMatchObject({ error: { code: "UPLOAD_ALREADY_EXISTS" } });
    const object = await env.IMAGES.get(grant.key);
    expect(await hex(new Uint8Array(await object!.arrayBuffer()))).toBe(await hex(first));
    expect(await testDb().select().from(sessionImages)).toHaveLength(1);
  });

  it("lets exactly one of two concurrent PUTs on one key through", async () => {
    const { token } = await signedInUser();
    const grant = await uploadGrant(token);
    const statuses = (await Promise.all([putUpload(grant.uploadUrl, pngBytes()), putUpload(grant.uploadUrl, pngBytes())])).map((r) => r.status);
    expect(statuses.sort()).toEqual([201, 409]);
    expect(await storedKeys()).toEqual([grant.key]);
  });

  it("answers 415 when the body's Content-Type is not the signed one", async () => {
    const { token } = await signedInUser();
    const grant = await uploadGrant(token);
    for (const headers of [{ "Content-Type": "image/jpeg" }, { "Content-Type": "application/json" }, {} as Record<string, string>]) {
      const response = await putUpload(grant.uploadUrl, pngBytes(), headers);
      expect(response.status).toBe(415);
      expect(await json(response)).toMatchObject({ error: { code: "UNSUPPORTED_MEDIA_TYPE" } });
    }
    await expectNothingStored();
  });

  it("answers 413 to a body longer than signed and 400 to a shorter one", async () => {
    const { token } = await signedInUser();
    const grant = await uploadGrant(token, "image/png", 2048);
    const longer = await putUpload(grant.uploadUrl, pngBytes(2049));
    expect(longer.status).toBe(413);
    expect(await json(longer)).toMatchObject({ error: { code: "PAYLOAD_TOO_LARGE" } });
    const shorter = await putUpload(grant.uploadUrl, pngBytes(2047));
    expect(shorter.status).toBe(400);
    expect(await json(shorter)).toMatchObject({ error: { code: "UPLOAD_LENGTH_MISMATCH" } });
    await expectNothingStored();
  });

  it("answers 400 UPLOAD_LENGTH_MISMATCH to a body that ends before its Content-Length, even before its signature", async () => {
    const { token } = await signedInUser();
    for (const sent of [5, 1000]) {
      const grant = await uploadGrant(token, "image/png", 2048);
      const cut = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(pngBytes(2048).subarray(0, sent));
          controller.close();
        },
      });
      const response = await putUpload(grant.uploadUrl, cut, { "Content-Type": "image/png", "Content-Length": "2048" });
      expect(response.status, `${sent} bytes`).toBe(400);
      expect(await json(response)).toMatchObject({ error: { code: "UPLOAD_LENGTH_MISMATCH" } });
    }
    await expectNothingStored();
  });

  it("answers 403 UPLOAD_URL_INVALID to a URL whose account was deleted since it was signed, storing nothing", async () => {
    const { token } = await signedInUser();
    const grant = await uploadGrant(token);
    expect((await callAs(token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
    const response = await putUpload(grant.uploadUrl, pngBytes());
    expect(response.status).toBe(403);
    expect(await json(response)).toMatchObject({ error: { code: "UPLOAD_URL_INVALID" } });
    await expectNothingStored();
  });

  it("answers 411 to a body streamed without a length", async () => {
    const { token } = await signedInUser();
    const grant = await uploadGrant(token);
    const bytes = pngBytes();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, 1000));
        controller.enqueue(bytes.subarray(1000));
        controller.close();
      },
    });
    const response = await putUpload(grant.uploadUrl, stream);
    expect(response.status).toBe(411);
    expect(await json(response)).toMatchObject({ error: { code: "LENGTH_REQUIRED" } });
    await expectNothingStored();
  });

  it("answers 422 INVALID_IMAGE when the bytes are not the signed type, leaving nothing, and the URL stays usable", async () => {
    const { token } = await signedInUser();
    const grant = await uploadGrant(token, "image/png", 2048);
    const jpeg = new Uint8Array(2048);
    jpeg.set([0xff, 0xd8, 0xff, 0xe0]);
    for (const body of [new TextEncoder().encode("x".repeat(2048)), jpeg]) {
      const response = await putUpload(grant.uploadUrl, body);
      expect(response.status).toBe(422);
      expect(await json(response)).toMatchObject({ error: { code: "INVALID_IMAGE" } });
      await expectNothingStored();
    }
    const tiny = await uploadGrant(token, "image/png", 5);
    expect((await putUpload(tiny.uploadUrl, pngBytes().subarray(0, 5))).status).toBe(422);
    await expectNothingStored();
    // A rejection releases the key: the same URL still takes the real image.
    expect((await putUpload(grant.uploadUrl, pngBytes(2048))).status).toBe(201);
  });

  it("answers DATABASE_UNAVAILABLE, not a length mismatch, when the database is lost after the body arrived", async () => {
    const { token } = await signedInUser();
    const grant = await uploadGrant(token);
    const { pathname, searchParams } = new URL(grant.uploadUrl);
    const image = pngBytes(2048);
    // The claim goes through; the connection to the database is lost while the last bytes arrive,
    // so the next statement — recording the finished upload — never reaches Postgres.
    const halves = [image.subarray(0, 1024), image.subarray(1024)];
    const body = new ReadableStream<Uint8Array>({
      // Read only once the key is claimed: the second half arms the drop before it arrives.
      async pull(controller) {
        const half = halves.shift();
        if (half === undefined) return controller.close();
        if (halves.length === 0) await dropNextDatabaseRequests(1);
        controller.enqueue(half);
      },
    });
    const failure = await receiveUpload(
      { config: testConfig(), db: droppingDb(), bucket: env.IMAGES },
      decodeURIComponent(pathname.replace("/api/v1/uploads/", "")),
      signedUploadQuerySchema.parse(Object.fromEntries(searchParams)),
      { contentType: "image/png", contentLength: String(image.length), body },
    ).then(() => undefined, (error: unknown) => error);
    expect(failure).not.toBeInstanceOf(AppError);
    expect(unreachableDatabaseError(failure)).toBeDefined();
    // Nothing half-stored: the object is gone, and the same URL takes the image once the database is back.
    expect(await storedKeys()).toEqual([]);
    expect((await putUpload(grant.uploadUrl, image)).status).toBe(201);
  });
});
