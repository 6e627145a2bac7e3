// A burst client for the Neon HTTP stand-in, shared by its test and `npm run bench:neon-burst`:
// many requests at once, each with its own answer to check, over a connection pool that behaves
// like the Worker's fetch, or over fresh connections.
import { Agent, request } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

/**
 * Pools connections as workerd's fetch does: an idle socket stays for reuse 5 s (KJ's default
 * idle timeout) whatever the server's Keep-Alive hint says, where Node's own Agent would drop it
 * at once on a short hint.
 */
export class WorkerdLikePool extends Agent {
  constructor() {
    super({ keepAlive: true });
  }

  override keepSocketAlive(socket: Duplex): boolean {
    const tcp = socket as Socket;
    tcp.setKeepAlive(true, 1_000);
    tcp.unref();
    tcp.setTimeout(5_000);
    return true;
  }
}

/** A POST over `agent` (false: a fresh connection); resolves status and parsed body, rejects on a dropped socket. */
export function postSql(endpoint: string, agent: Agent | false, body: unknown): Promise<{ status: number; body: unknown }> {
  const url = new URL(endpoint);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

export interface BurstResult {
  /** One line per request that failed or answered wrongly: `#index: what happened`. */
  failures: string[];
  /** Each request's time to its full answer (or failure), in ms, sorted. */
  latencies: number[];
  wallMs: number;
}

/**
 * `n` requests at once, each with its own answer: single queries, batches, and slow queries
 * (pg_sleep) that hold the database while the others queue.
 */
export async function burst(endpoint: string, n: number, agent: Agent | false): Promise<BurstResult> {
  const requests = Array.from({ length: n }, (_, i) => {
    const kind = i % 3;
    if (kind === 0) return { body: { query: "select $1::int * 2 as n", params: [String(i)] }, rows: [[String(i * 2)]] };
    if (kind === 1) return { body: { query: "select $1::int as n from pg_sleep(0.01)", params: [String(i)] }, rows: [[String(i)]] };
    return {
      body: { queries: [{ query: "select $1::int as n", params: [String(i)] }, { query: "select $1::text || '!' as t", params: [String(i)] }] },
      results: [[[String(i)]], [[`${i}!`]]],
    };
  });
  const latencies: number[] = [];
  const started = performance.now();
  const outcomes = await Promise.allSettled(
    requests.map(({ body }) => {
      const sent = performance.now();
      return postSql(endpoint, agent, body).finally(() => latencies.push(performance.now() - sent));
    }),
  );
  const wallMs = performance.now() - started;
  const failures = outcomes.flatMap((outcome, i) => {
    if (outcome.status === "rejected") return [`#${i}: ${String((outcome.reason as Error).message)}`];
    const expected = requests[i]!;
    const answer = outcome.value.body as { rows?: unknown; results?: Array<{ rows: unknown }> };
    const got = "results" in expected ? answer.results?.map((result) => result.rows) : answer.rows;
    const wanted = "results" in expected ? expected.results : expected.rows;
    return outcome.value.status === 200 && JSON.stringify(got) === JSON.stringify(wanted)
      ? []
      : [`#${i}: ${outcome.value.status} ${JSON.stringify(outcome.value.body)}`];
  });
  return { failures, latencies: latencies.sort((a, b) => a - b), wallMs };
}

/** Resolves in the first turn of the event loop once `ms` have passed: right after a blocking call returns, before any timer runs. */
export function nextTurnAfter(ms: number): Promise<void> {
  const start = performance.now();
  return new Promise((resolve) => {
    const check = () => (performance.now() - start >= ms ? resolve() : setImmediate(check));
    setImmediate(check);
  });
}

/**
 * The burst that once lost requests: `first` requests over the pool, then a long statement that
 * holds PGlite, and with it the stand-in's event loop, for `holdSeconds`; then `second` requests
 * go out on the pooled sockets in the first turn after it. A stand-in whose idle timeout is
 * shorter than the pool's has by then marked those sockets expired, closes them before reading
 * what waits on them, and drops those requests, as the Worker's fetch saw under load.
 */
export async function burstAfterHold(endpoint: string, options: { first: number; second: number; holdSeconds: number }) {
  const pool = new WorkerdLikePool();
  try {
    const first = await burst(endpoint, options.first, pool);
    const held = postSql(endpoint, false, { query: `select pg_sleep(${options.holdSeconds})` });
    await nextTurnAfter(options.holdSeconds * 800);
    const second = await burst(endpoint, options.second, pool);
    return { first, second, held: await held };
  } finally {
    pool.destroy();
  }
}
