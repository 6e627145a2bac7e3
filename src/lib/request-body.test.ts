import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, clearBucket, json, resetDatabase, signedInUser } from "../../test/helpers";
import { pngBytes } from "../../test/images";
import { createApp } from "../app";
import type { Bindings } from "./env";
import { discardBody } from "./request-body";

/** A request body that records how much of it the Worker read, and whether it was cancelled. */
function trackedBody(bytes: Uint8Array, chunkSize = 4096) {
  const seen = { bytes: 0, ended: false, cancelled: false };
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        seen.ended = true;
        return controller.close();
      }
      const chunk = bytes.slice(offset, offset + chunkSize);
      offset += chunk.length;
      seen.bytes += chunk.length;
      controller.enqueue(chunk);
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return { stream, seen };
}

async function send(method: string, url: string, headers: Record<string, string>, bytes: Uint8Array) {
  const body = trackedBody(bytes);
  const ctx = createExecutionContext();
  const response = await createApp().fetch(
    new Request(`http://127.0.0.1:8787${url}`, { method, headers: { ...headers, "Content-Length": String(bytes.length) }, body: body.stream }),
    env as Bindings,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return { status: response.status, code: ((await response.json()) as { error?: { code: string } }).error?.code, seen: body.seen };
}

describe("early answers to a request with a body", () => {
  beforeEach(async () => {
    await resetDatabase();
    await clearBucket();
  });

  it("read the whole body first, so a keep-alive connection can carry the next request", async () => {
    const { token } = await signedInUser();
    const image = pngBytes(64 * 1024);
    const grant = await json<{ uploadUrl: string }>(await callAs(token, `/api/v1/sessions/upload-url?contentType=image/png&size=${image.length}`));
    const url = new URL(grant.success ? grant.data.uploadUrl : "");
    const signed = url.pathname + url.search;
    const tampered = new URL(url);
    const sig = tampered.searchParams.get("sig")!;
    tampered.searchParams.set("sig", `${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`);
    const notAnImage = new Uint8Array(image.length).fill(7);
    const jsonHeaders = { "Content-Type": "application/json", Authorization: `Bearer ${token}` };

    const refusals = [
      ["PUT", tampered.pathname + tampered.search, { "Content-Type": "image/png" }, image, 403, "UPLOAD_URL_INVALID"],
      ["PUT", signed, { "Content-Type": "image/jpeg" }, image, 415, "UNSUPPORTED_MEDIA_TYPE"],
      ["PUT", signed, { "Content-Type": "image/png" }, notAnImage, 422, "INVALID_IMAGE"],
      ["POST", "/api/v1/sessions", { "Content-Type": "application/json" }, new TextEncoder().encode(`{"type":"text","messages":[]}`), 401, "UNAUTHORIZED"],
      ["PUT", "/api/v1/users/me", jsonHeaders, new Uint8Array(100_000).fill(0x20), 413, "PAYLOAD_TOO_LARGE"],
      ["POST", "/api/v1/sessions", { ...jsonHeaders, "Content-Type": "text/plain" }, new Uint8Array(5_000).fill(0x20), 415, "UNSUPPORTED_MEDIA_TYPE"],
    ] as const;
    for (const [method, path, headers, bytes, status, code] of refusals) {
      const answer = await send(method, path, headers, bytes);
      expect({ status: answer.status, code: answer.code }, `${method} ${path.slice(0, 30)}`).toEqual({ status, code });
      expect(answer.seen, `${code}: the whole body was read`).toEqual({ bytes: bytes.length, ended: true, cancelled: false });
    }

    // The refusals left nothing behind: the real upload still goes through, and a second is a 409
    // that reads its body too.
    const stored = await send("PUT", signed, { "Content-Type": "image/png" }, image);
    expect(stored.status).toBe(201);
    const again = await send("PUT", signed, { "Content-Type": "image/png" }, image);
    expect({ status: again.status, code: again.code }).toEqual({ status: 409, code: "UPLOAD_ALREADY_EXISTS" });
    expect(again.seen).toEqual({ bytes: image.length, ended: true, cancelled: false });
  });
});

describe("discardBody", () => {
  it("cancels a body larger than the bound instead of reading it all", async () => {
    const body = trackedBody(new Uint8Array(64 * 1024), 1024);
    await discardBody(body.stream, 8 * 1024);
    expect(body.seen.cancelled).toBe(true);
    expect(body.seen.bytes).toBeLessThan(16 * 1024);
  });

  it("leaves a body someone else is reading alone", async () => {
    const body = trackedBody(new Uint8Array(8 * 1024), 1024);
    const reader = body.stream.getReader();
    await discardBody(body.stream, 1024 * 1024);
    expect(body.seen.ended).toBe(false);
    reader.releaseLock();
  });
});
