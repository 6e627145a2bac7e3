import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import worker from "../src/index";

/**
 * `call` (helpers.ts) for a file that sends hundreds of requests: straight to the Worker's default
 * export instead of through SELF. In @cloudflare/vitest-pool-workers 0.23.0 every SELF.fetch wraps
 * the entrypoint's prototype in one more Proxy (cloudflare/workers-sdk#15092, #15446), so each
 * request of a file is slower than the one before: 150 requests take 1 s at first, 20 s after 450
 * more. The body's length goes in Content-Length (a stream's in Transfer-Encoding: chunked), as an
 * HTTP client sends it and SELF passes it on; the Worker's waitUntil work runs on after the answer.
 */
export async function callWorker(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const body = init.body;
  if (typeof body === "string") headers.set("Content-Length", String(new TextEncoder().encode(body).byteLength));
  else if (body instanceof Uint8Array || body instanceof ArrayBuffer) headers.set("Content-Length", String(body.byteLength));
  else if (body instanceof ReadableStream) headers.set("Transfer-Encoding", "chunked");
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`http://127.0.0.1:8787${path}`, { ...init, headers }), env, ctx);
  void waitOnExecutionContext(ctx).catch(() => undefined);
  return response;
}
