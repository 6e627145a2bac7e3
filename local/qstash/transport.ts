// How a delivery reaches its destination. `fetch` (dev): the stand-in sends it itself. `pull`
// (tests): the Worker under test runs inside workerd with no port to send to, so a test pump
// pulls due deliveries over HTTP, hands them to the Worker and reports what it answered.

/** One attempt at delivering a message, headers already signed. The body is base64. */
export interface Delivery {
  id: string;
  messageId: string;
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

/** The destination's answer: header names lower-case, body base64; status 0 and `error` when there was none. */
export interface Outcome {
  status: number;
  headers: Record<string, string[]>;
  body: string;
  error?: string;
}

export interface Transport {
  /** Calls `done` exactly once, unless `cancelAll` comes first. */
  send(delivery: Delivery, timeoutMs: number, done: (outcome: Outcome) => void): void;
  /** Forgets everything in flight; nothing sent before calls `done` any more. */
  cancelAll(): void;
}

export interface PullTransport extends Transport {
  /** The next due delivery, waiting up to `waitMs` for one; null if none came or `signal` fired. */
  pull(waitMs: number, signal: AbortSignal): Promise<Delivery | null>;
  /** The answer to a pulled delivery; false if it is unknown (never pulled, or timed out). */
  report(id: string, outcome: Outcome): boolean;
}

const noAnswer = (error: string): Outcome => ({ status: 0, headers: {}, body: "", error });

function headerLists(headers: Headers): Record<string, string[]> {
  const lists: Record<string, string[]> = {};
  for (const [name, value] of headers) (lists[name] ??= []).push(value);
  return lists;
}

export function fetchTransport(): Transport {
  let cancel = new AbortController();
  return {
    send(delivery, timeoutMs, done) {
      const { signal } = cancel;
      const bodyless = delivery.method === "GET" || delivery.method === "HEAD";
      fetch(delivery.url, {
        method: delivery.method,
        headers: delivery.headers,
        body: bodyless ? undefined : Buffer.from(delivery.body, "base64"),
        // The timeout covers reading the answer too.
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      })
        .then(async (res) => ({ status: res.status, headers: headerLists(res.headers), body: Buffer.from(await res.arrayBuffer()).toString("base64") }))
        .then(
          (outcome) => {
            if (!signal.aborted) done(outcome);
          },
          (error: unknown) => {
            if (!signal.aborted) done(noAnswer(error instanceof Error ? error.message : String(error)));
          },
        );
    },
    cancelAll() {
      cancel.abort();
      cancel = new AbortController();
    },
  };
}

export function pullTransport(): PullTransport {
  type Item = { delivery: Delivery; timeoutMs: number; done: (outcome: Outcome) => void };
  const ready: Item[] = [];
  const waiting: Array<(item: Item | null) => void> = [];
  const leased = new Map<string, { done: (outcome: Outcome) => void; timer: NodeJS.Timeout }>();

  // A pulled delivery not reported within its timeout counts as failed, as an unanswered fetch would.
  const lease = ({ delivery, timeoutMs, done }: Item): Delivery => {
    const timer = setTimeout(() => {
      leased.delete(delivery.id);
      done(noAnswer(`not reported within ${timeoutMs} ms`));
    }, timeoutMs);
    leased.set(delivery.id, { done, timer });
    return delivery;
  };

  return {
    send(delivery, timeoutMs, done) {
      const item = { delivery, timeoutMs, done };
      const waiter = waiting.shift();
      if (waiter) waiter(item);
      else ready.push(item);
    },
    pull(waitMs, signal) {
      const item = ready.shift();
      if (item) return Promise.resolve(lease(item));
      if (signal.aborted) return Promise.resolve(null);
      return new Promise((resolve) => {
        const settle = (given: Item | null) => {
          clearTimeout(timer);
          signal.removeEventListener("abort", leave);
          resolve(given ? lease(given) : null);
        };
        // A poller that gave up is taken off the list, so nothing is handed to a closed connection.
        const leave = () => {
          const index = waiting.indexOf(settle);
          if (index !== -1) waiting.splice(index, 1);
          settle(null);
        };
        const timer = setTimeout(leave, waitMs);
        signal.addEventListener("abort", leave, { once: true });
        waiting.push(settle);
      });
    },
    report(id, outcome) {
      const entry = leased.get(id);
      if (!entry) return false;
      clearTimeout(entry.timer);
      leased.delete(id);
      entry.done(outcome);
      return true;
    },
    cancelAll() {
      ready.length = 0;
      for (const { timer } of leased.values()) clearTimeout(timer);
      leased.clear();
      for (const settle of waiting.splice(0)) settle(null);
    },
  };
}

/**
 * A transport that can be held: while held, due deliveries wait and go out on release, as a
 * QStash that was down works off its backlog when it comes back.
 */
export function holdableTransport<T extends Transport>(inner: T) {
  let held: Array<Parameters<Transport["send"]>> | undefined;
  const transport: T = {
    ...inner,
    send(...args) {
      if (held) held.push(args);
      else inner.send(...args);
    },
    cancelAll() {
      if (held) held.length = 0;
      inner.cancelAll();
    },
  };
  return {
    transport,
    hold: () => void (held ??= []),
    release: () => {
      const waiting = held ?? [];
      held = undefined;
      for (const args of waiting) inner.send(...args);
    },
  };
}
