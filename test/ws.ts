import { call } from "./helpers";

export type Frame = { type: string; seq?: number; ts?: number } & Record<string, unknown>;

/** A test client for the Worker's WebSocket routes: collects frames and the close event. */
export async function openSocket(path: string) {
  const response = await call(path, { headers: { Upgrade: "websocket" } });
  const ws = response.webSocket;
  if (response.status !== 101 || !ws) throw new Error(`no upgrade: ${response.status} ${await response.text()}`);
  ws.accept();
  const frames: Frame[] = [];
  let closed: { code: number; reason: string } | undefined;
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((listener) => listener());
  ws.addEventListener("message", (event) => {
    frames.push(JSON.parse(event.data as string) as Frame);
    notify();
  });
  ws.addEventListener("close", (event) => {
    closed = { code: event.code, reason: event.reason };
    notify();
  });

  /** Resolves once `ready()` holds, re-checked on every frame or close; rejects after `timeoutMs`. */
  function until<T>(ready: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = ready();
        if (value === undefined || value === false) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(frames)} closed: ${JSON.stringify(closed)}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  }

  return {
    ws,
    frames,
    send: (frame: unknown) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
    /** The first frame (from index `from`) of this type. */
    frame: (type: string, from = 0, timeoutMs?: number) =>
      until(() => frames.slice(from).find((f) => f.type === type), `a ${type} frame`, timeoutMs),
    /** Waits until `count` frames with a room seq (> 0) and a room event type arrived. */
    events: (count: number, timeoutMs?: number) =>
      until(() => {
        const events = frames.filter(isRoomEvent);
        return events.length >= count ? events : undefined;
      }, `${count} events`, timeoutMs),
    closed: (timeoutMs?: number) => until(() => closed, "close", timeoutMs),
    close: () => ws.close(1000, "bye"),
  };
}

export type TestSocket = Awaited<ReturnType<typeof openSocket>>;

const DIRECT_REPLIES = new Set(["authenticated", "pong", "error"]);
export function isRoomEvent(frame: Frame): boolean {
  return !DIRECT_REPLIES.has(frame.type);
}
