// A WebSocket test client's bookkeeping, for any runtime's WebSocket (workerd's in the pool,
// Node's against `wrangler dev`): collects frames and the close, and waits for either.

export type Frame = { type: string; seq?: number; ts?: number } & Record<string, unknown>;

/** What both runtimes' WebSockets offer and the client needs. */
export interface SocketLike {
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export function watchSocket(ws: SocketLike) {
  const frames: Frame[] = [];
  /** Each frame's arrival (performance.now()), index for index with `frames`. */
  const arrivals: number[] = [];
  let closed: { code: number; reason: string; at: number } | undefined;
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((listener) => listener());
  ws.addEventListener("message", (event) => {
    frames.push(JSON.parse(event.data as string) as Frame);
    arrivals.push(performance.now());
    notify();
  });
  ws.addEventListener("close", (event) => {
    closed = { code: event.code, reason: event.reason, at: performance.now() };
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
    frames,
    arrivals,
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
    /** The close frame, with its arrival (performance.now()). */
    closed: (timeoutMs?: number) => until(() => closed, "close", timeoutMs),
    close: () => ws.close(1000, "bye"),
  };
}

const DIRECT_REPLIES = new Set(["authenticated", "pong", "error"]);
export function isRoomEvent(frame: Frame): boolean {
  return !DIRECT_REPLIES.has(frame.type);
}
