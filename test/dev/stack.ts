// The `dev` project's fixtures: a real `wrangler dev` stack per test file, and a Node WebSocket
// client for it.
import { afterAll, beforeAll } from "vitest";
import { type DevStack, type DevStackOptions, startDevStack } from "../../local/dev-stack.ts";
import { watchSocket } from "../socket.ts";

/** Generous: on a busy 2-core CI machine wrangler's bundling and workerd's start are slow. */
export const DEV_STACK_START_TIMEOUT_MS = 180_000;

/**
 * Starts a stack before the file's tests and stops every process of it afterwards — also when
 * the start itself times out, which aborts it. Returns a getter for the started stack, and
 * records how long the start took.
 */
export function useDevStack(options: Omit<DevStackOptions, "signal" | "startTimeoutMs"> = {}) {
  const aborted = new AbortController();
  let started: Promise<DevStack> | undefined;
  let stack: DevStack | undefined;
  let startMs: number | undefined;
  beforeAll(async () => {
    const begin = performance.now();
    started = startDevStack({ ...options, startTimeoutMs: DEV_STACK_START_TIMEOUT_MS, signal: aborted.signal });
    stack = await started;
    startMs = performance.now() - begin;
    console.log(`dev stack started in ${(startMs / 1000).toFixed(1)} s on ${stack.url}`);
  }, DEV_STACK_START_TIMEOUT_MS + 30_000);
  afterAll(async () => {
    aborted.abort();
    await started?.then((s) => s.stop(), () => {});
  }, 30_000);
  return {
    get stack(): DevStack {
      if (!stack) throw new Error("the dev stack has not started");
      return stack;
    },
    get startMs() {
      return startMs;
    },
  };
}

/** Opens a WebSocket on the stack (path like /api/v1/sessions/<id>/ws) and waits until it is open. */
export async function openDevSocket(url: string, path: string) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}${path}`);
  const watched = watchSocket(ws);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error(`WebSocket ${path} did not open`)), { once: true });
  });
  return {
    ws,
    ...watched,
    /**
     * When the server's close frame arrived (performance.now()): the WebSocket leaves OPEN as
     * the closing handshake starts. Node's `close` event comes later, once the server has also
     * ended the connection.
     */
    closeFrame: (timeoutMs: number) =>
      new Promise<number>((resolve, reject) => {
        const deadline = performance.now() + timeoutMs;
        const timer = setInterval(() => {
          if (ws.readyState !== WebSocket.OPEN) resolve(performance.now());
          else if (performance.now() > deadline) reject(new Error(`no close frame within ${timeoutMs} ms`));
          else return;
          clearInterval(timer);
        }, 2);
      }),
  };
}

/** An authenticated request to the stack's API. */
export function api(url: string, token: string, path: string, init: { method?: string; body?: unknown } = {}) {
  return fetch(`${url}${path}`, {
    method: init.method ?? "GET",
    headers: { Authorization: `Bearer ${token}`, ...(init.body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}
