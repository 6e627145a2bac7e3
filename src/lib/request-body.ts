import type { MiddlewareHandler } from "hono";

/**
 * Reads and drops what is left of a request body, up to `maxBytes`; past that it cancels.
 * HTTP/1.1 can only carry the next request on a connection once this one's body has been read:
 * an answer given early (401, 403, 409, 413, 415, 429 …) over an unread body leaves the client's
 * keep-alive connection in a state the runtime resolves by dropping it — which the mobile app
 * sees as a failed request, and which some wrangler versions turned into a dead dev server.
 */
export async function discardBody(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<void> {
  if (!body || body.locked) return;
  const reader = body.getReader();
  try {
    for (let seen = 0; seen <= maxBytes; ) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away mid-body: nothing is left to keep clean.
  } finally {
    reader.releaseLock();
  }
}

/**
 * Every answer leaves the connection clean: whatever a handler or guard did not read of the
 * body is read here, after the response is ready and before it is sent. Bodies larger than
 * `maxBytes` (more than any route accepts) are cancelled instead of drained.
 */
export function drainUnreadBody(maxBytes: number): MiddlewareHandler {
  return async (c, next) => {
    await next();
    await discardBody(c.req.raw.body, maxBytes);
  };
}
