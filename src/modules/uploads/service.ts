import type { z } from "@hono/zod-openapi";
import { and, asc, eq, inArray, isNotNull, isNull, type SQL, sql, type SQLWrapper } from "drizzle-orm";
import { type ocrStatusEnum, sessionImages } from "../../db/schema";
import type { Database } from "../../lib/db";
import { toBase64Url, toHex } from "../../lib/encoding";
import type { AppConfig } from "../../lib/env";
import { AppError, type HttpErrorCode } from "../../lib/errors";
import { accountIsLive, isLiveAccount } from "../users/service";
import { MAGIC_BYTES_NEEDED, matchesImageType } from "./magic";
import { assertUploadQuota } from "./quota";
import type { ImageContentType, signedUploadQuerySchema } from "./schemas";
import { signUploadGrant, type UploadGrant, verifyUploadGrant } from "./signing";

const EXTENSIONS: Record<ImageContentType, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/heic": "heic",
};

// u/<user id>/<128 random bits>.<ext>: namespaced for the purge, unguessable for everyone else.
const KEY_PATTERN = /^u\/([a-z0-9]{1,64})\/[A-Za-z0-9_-]{22}\.(png|jpg|webp|heic)$/;

function signingSecret(config: AppConfig): string {
  if (!config.UPLOAD_SIGNING_SECRET) throw new AppError("CONFIG_INVALID", { message: "Uploads are not configured" });
  return config.UPLOAD_SIGNING_SECRET;
}

export async function createUploadUrl(
  config: AppConfig,
  userId: string,
  request: { contentType: ImageContentType; size: number },
  now = Date.now(),
) {
  const grant: UploadGrant = {
    key: `u/${userId}/${toBase64Url(crypto.getRandomValues(new Uint8Array(16)))}.${EXTENSIONS[request.contentType]}`,
    contentType: request.contentType,
    size: request.size,
    expires: Math.floor(now / 1000) + config.UPLOAD_URL_TTL_SECONDS,
    userId,
  };
  const url = new URL(`/api/v1/uploads/${grant.key}`, config.PUBLIC_BASE_URL);
  url.search = new URLSearchParams({
    type: grant.contentType,
    size: String(grant.size),
    expires: String(grant.expires),
    sig: await signUploadGrant(signingSecret(config), grant),
  }).toString();
  return {
    uploadUrl: url.toString(),
    method: "PUT" as const,
    headers: { "Content-Type": grant.contentType },
    key: grant.key,
    expiresAt: new Date(grant.expires * 1000).toISOString(),
  };
}

/**
 * A signed upload URL, within the caller's quota (quota.ts). Its row is written now, with the
 * signed size: it reserves the key and counts against the quota (until the URL expires, if the
 * URL is never used).
 */
export async function issueUploadUrl(
  deps: { config: AppConfig; db: Database },
  userId: string,
  request: { contentType: ImageContentType; size: number },
  now = Date.now(),
) {
  await assertUploadQuota(deps.db, deps.config, userId, request.size, new Date(now));
  const url = await createUploadUrl(deps.config, userId, request, now);
  await deps.db
    .insert(sessionImages)
    .values({ userId, r2Key: url.key, contentType: request.contentType, sizeBytes: request.size, urlExpiresAt: new Date(url.expiresAt) });
  return url;
}

/** The grant an upload URL carries, if its signature holds and it has not expired; else 403. */
async function verifiedGrant(config: AppConfig, key: string, query: z.infer<typeof signedUploadQuerySchema>, now: number) {
  const owner = KEY_PATTERN.exec(key)?.[1];
  if (!owner) throw new AppError("UPLOAD_URL_INVALID");
  const grant: UploadGrant = { key, contentType: query.type, size: query.size, expires: query.expires, userId: owner };
  // Verify before looking at the expiry, so a forged URL learns nothing from the answer.
  const valid = await verifyUploadGrant(signingSecret(config), grant, query.sig);
  if (!valid || grant.expires * 1000 <= now) throw new AppError("UPLOAD_URL_INVALID");
  return grant;
}

type UploadRequest = { contentType: string | undefined; contentLength: string | undefined; body: ReadableStream<Uint8Array> | null };

/**
 * Checks an upload against its grant and streams it into R2 with its exact length, hashing and
 * sniffing it on the way. Any rejection leaves no R2 object, and the key free for another try.
 */
export async function receiveUpload(
  deps: { config: AppConfig; db: Database; bucket: R2Bucket },
  key: string,
  query: z.infer<typeof signedUploadQuerySchema>,
  request: UploadRequest,
  now = Date.now(),
) {
  const grant = await verifiedGrant(deps.config, key, query, now);
  if (request.contentType?.split(";")[0]?.trim().toLowerCase() !== grant.contentType) {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", { message: `This URL accepts ${grant.contentType} only` });
  }
  if (request.contentLength === undefined || request.body === null) throw new AppError("LENGTH_REQUIRED");
  const length = Number(request.contentLength);
  if (!Number.isSafeInteger(length) || length < 0) throw new AppError("LENGTH_REQUIRED");
  if (length > grant.size) throw new AppError("PAYLOAD_TOO_LARGE", { message: `This URL accepts exactly ${grant.size} bytes` });
  if (length !== grant.size) throw new AppError("UPLOAD_LENGTH_MISMATCH");

  // Setting receiving_at claims the key: a second PUT, even a concurrent one, finds it set. The
  // row is the one written with the URL (or, for a URL signed before rows were, written now).
  // A URL outlives its account by up to its lifetime: a deleted account's images are going, not
  // coming, so its URLs claim nothing.
  const [claim] = await deps.db
    .insert(sessionImages)
    .values({ userId: grant.userId, r2Key: key, contentType: grant.contentType, sizeBytes: grant.size, urlExpiresAt: new Date(grant.expires * 1000), receivingAt: new Date(now) })
    .onConflictDoUpdate({
      target: sessionImages.r2Key,
      set: { receivingAt: new Date(now) },
      setWhere: and(eq(sessionImages.userId, grant.userId), isNull(sessionImages.receivingAt), isNull(sessionImages.uploadedAt), isLiveAccount(grant.userId)),
    })
    .returning({ id: sessionImages.id });
  if (!claim) throw new AppError((await accountIsLive(deps.db, grant.userId)) ? "UPLOAD_ALREADY_EXISTS" : "UPLOAD_URL_INVALID");

  const inspection = inspectImage(grant.contentType, grant.size);
  // preventCancel: a refused body is handed back unlocked, so the rest of it can still be read
  // off the connection (drainUnreadBody) instead of the connection being dropped.
  const stopPiping = new AbortController();
  const piped = request.body.pipeTo(inspection.stream.writable, { preventCancel: true, signal: stopPiping.signal });
  // Its failure errors the stream `put` reads, and the failure path below awaits it.
  piped.catch(() => {});
  const giveBack = async () => {
    stopPiping.abort();
    await Promise.allSettled([piped, deps.bucket.delete(key), deps.db.update(sessionImages).set({ receivingAt: null }).where(eq(sessionImages.id, claim.id))]);
  };
  let stored: { size: number; sha256: string };
  try {
    const object = await deps.bucket.put(key, inspection.stream.readable.pipeThrough(new FixedLengthStream(grant.size)), {
      httpMetadata: { contentType: grant.contentType },
    });
    stored = { size: object.size, sha256: await inspection.sha256 };
  } catch (error) {
    // Only the body can fail here: it was not the promised image, or not all of it came.
    await giveBack();
    const rejection = inspection.rejection();
    if (rejection) throw new AppError(rejection);
    throw error instanceof AppError ? error : new AppError("UPLOAD_LENGTH_MISMATCH", { cause: error });
  }
  try {
    await deps.db.update(sessionImages).set({ sha256: stored.sha256, uploadedAt: new Date() }).where(eq(sessionImages.id, claim.id));
  } catch (error) {
    // The body was fine; the database was not. The error keeps its own code (a lost database is
    // DATABASE_UNAVAILABLE), so the app retries instead of blaming the image.
    await giveBack();
    throw error;
  }
  return { key, contentType: grant.contentType, ...stored };
}

/**
 * A pass-through stream that hashes every byte, checks the file signature once enough bytes
 * arrived, and errors (so R2 stores nothing) when the body is not the promised image.
 */
function inspectImage(type: ImageContentType, size: number) {
  const digest = new crypto.DigestStream("SHA-256");
  const hasher = digest.getWriter();
  const head = new Uint8Array(MAGIC_BYTES_NEEDED);
  let headLength = 0;
  let seen = 0;
  let rejection: HttpErrorCode | undefined;
  const reject = (code: HttpErrorCode) => {
    rejection = code;
    return new Error(code);
  };

  const stream = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      if (headLength < MAGIC_BYTES_NEEDED) {
        const take = chunk.subarray(0, MAGIC_BYTES_NEEDED - headLength);
        head.set(take, headLength);
        headLength += take.length;
        if (headLength === MAGIC_BYTES_NEEDED && !matchesImageType(type, head)) throw reject("INVALID_IMAGE");
      }
      seen += chunk.byteLength;
      if (seen > size) throw reject("PAYLOAD_TOO_LARGE");
      await hasher.write(chunk);
      controller.enqueue(chunk);
    },
    async flush() {
      // A body that ended early is a length mismatch, whatever the few bytes that came were.
      if (seen !== size) throw reject("UPLOAD_LENGTH_MISMATCH");
      if (headLength < MAGIC_BYTES_NEEDED) throw reject("INVALID_IMAGE");
      await hasher.close();
    },
  });
  const sha256 = digest.digest.then(toHex);
  // Never an unhandled rejection when the upload fails before the digest is read.
  sha256.catch(() => {});
  return { stream, sha256, rejection: () => rejection };
}

export type ClaimableUpload = { key: string; sha256: string };

/**
 * The caller's finished uploads for these keys, in the given order, that still exist in R2 and
 * belong to no session yet. Someone else's key is reported exactly like a missing one.
 */
export async function findClaimableUploads(db: Database, bucket: R2Bucket, userId: string, keys: string[]) {
  const rows = await db
    .select({ key: sessionImages.r2Key, sessionId: sessionImages.sessionId })
    .from(sessionImages)
    .where(and(eq(sessionImages.userId, userId), inArray(sessionImages.r2Key, keys), isNotNull(sessionImages.uploadedAt)));
  const byKey = new Map(rows.map((row) => [row.key, row]));
  const stored = await Promise.all(keys.map((key) => (byKey.has(key) ? bucket.head(key) : null)));
  const missing = keys.filter((key, i) => !byKey.has(key) || stored[i] === null);
  if (missing.length > 0) throw new AppError("UPLOAD_NOT_FOUND", { details: { missingKeys: missing.length } });
  if (rows.some((row) => row.sessionId !== null)) throw new AppError("UPLOAD_ALREADY_USED");
}

/**
 * The caller's finished upload with this key (its R2 key and type), or undefined: someone
 * else's key, or an upload that never finished, is reported exactly like a missing one.
 */
export async function finishedUploadOf(db: Database, userId: string, key: string) {
  const [row] = await db
    .select({ r2Key: sessionImages.r2Key, contentType: sessionImages.contentType })
    .from(sessionImages)
    .where(and(eq(sessionImages.userId, userId), eq(sessionImages.r2Key, key), isNotNull(sessionImages.uploadedAt)));
  return row;
}

/** Attaches unclaimed uploads to a session, positions in key order; returns the rows it took. */
export function attachUploads(db: Database, input: { sessionId: string; userId: string; keys: string[] }) {
  return db
    .update(sessionImages)
    .set({
      sessionId: input.sessionId,
      position: sql`array_position(${sql.param(input.keys)}::text[], ${sessionImages.r2Key}) - 1`,
    })
    .where(
      and(
        eq(sessionImages.userId, input.userId),
        inArray(sessionImages.r2Key, input.keys),
        isNull(sessionImages.sessionId),
        isNotNull(sessionImages.uploadedAt),
      ),
    )
    .returning({ id: sessionImages.id });
}

/** Undoes `attachUploads` for a session that lost a race for its images. */
export function detachUploads(db: Database, sessionId: string) {
  return db.update(sessionImages).set({ sessionId: null, position: null }).where(eq(sessionImages.sessionId, sessionId));
}

/** A session's screenshots in display order, as OCR reads them. */
export function screenshotsOf(db: Database, sessionId: string) {
  return db
    .select({
      id: sessionImages.id,
      r2Key: sessionImages.r2Key,
      contentType: sessionImages.contentType,
      sha256: sessionImages.sha256,
      uploadedAt: sessionImages.uploadedAt,
      r2DeletedAt: sessionImages.r2DeletedAt,
    })
    .from(sessionImages)
    .where(eq(sessionImages.sessionId, sessionId))
    .orderBy(asc(sessionImages.position));
}

/** Whether any of a session's screenshots left R2 (retention): OCR cannot run on it again. */
export async function screenshotsExpired(db: Database, sessionId: string): Promise<boolean> {
  const [gone] = await db
    .select({ id: sessionImages.id })
    .from(sessionImages)
    .where(and(eq(sessionImages.sessionId, sessionId), isNotNull(sessionImages.r2DeletedAt)))
    .limit(1);
  return gone !== undefined;
}

/** Records that OCR has read this screenshot. */
export async function markScreenshotRead(db: Database, imageId: string): Promise<void> {
  await db.update(sessionImages).set({ ocrStatus: "completed" }).where(eq(sessionImages.id, imageId));
}

export type SessionImageJson = {
  key: string;
  position: number;
  contentType: string;
  sizeBytes: number;
  ocrStatus: (typeof ocrStatusEnum.enumValues)[number];
  /** False once the retention sweep deleted it from R2 (at `deletedAt`). */
  available: boolean;
  deletedAt: string | null;
};

/**
 * A session's screenshots in display order as a JSON array, to embed in a statement that reads
 * the session with everything it holds at once (its detail is one query). `sessionId` is usually
 * the outer statement's column.
 */
export function sessionImagesJson(sessionId: SQLWrapper): SQL<SessionImageJson[]> {
  return sql<SessionImageJson[]>`coalesce((
    select json_agg(json_build_object('key', i.r2_key, 'position', i.position, 'contentType', i.content_type,
      'sizeBytes', i.size_bytes, 'ocrStatus', i.ocr_status, 'available', i.r2_deleted_at is null, 'deletedAt', i.r2_deleted_at) order by i.position)
    from ${sessionImages} i where i.session_id = ${sessionId}), '[]'::json)`;
}

/**
 * Deletes up to `limit` (R2 takes at most 1,000 keys a call) of a user's stored objects, found by
 * their key prefix; answers how many it deleted. The account purge calls it until it answers 0.
 */
export async function deleteStoredObjectsOf(bucket: Pick<R2Bucket, "list" | "delete">, userId: string, limit = 1_000): Promise<number> {
  const listed = await bucket.list({ prefix: `u/${userId}/`, limit });
  if (listed.objects.length > 0) await bucket.delete(listed.objects.map((object) => object.key));
  return listed.objects.length;
}
