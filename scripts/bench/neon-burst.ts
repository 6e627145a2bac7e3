// `npm run bench:neon-burst`: bursts of concurrent requests against the Neon HTTP stand-in (in
// memory, on a free port) — mixed single queries, batches and pg_sleep(0.01) — over fresh
// connections, and over a pool that keeps idle sockets like the Worker's fetch, reused right
// after a long statement held PGlite. Prints how many requests failed or answered wrongly, and
// the latency of each burst.
// Usage: npm run bench:neon-burst [-- --requests 200,400 --hold 5]
import { parseArgs } from "node:util";
import { type BurstResult, burst, burstAfterHold } from "../../local/neon-http/burst.ts";
import { startNeonStandIn } from "../../local/neon-http/server.ts";
import { percentile } from "./stats.ts";

const { values } = parseArgs({ options: { requests: { type: "string", default: "200,400" }, hold: { type: "string", default: "5" } } });
const sizes = values.requests.split(",").map(Number);
const holdSeconds = Number(values.hold);

const report = (label: string, n: number, result: BurstResult) => {
  const kinds = new Map<string, number>();
  for (const failure of result.failures) {
    const kind = failure.replace(/^#\d+: /, "").slice(0, 60);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const what = [...kinds].map(([kind, count]) => `${count}× ${kind}`).join(", ");
  const ms = (p: number) => percentile(result.latencies, p).toFixed(0);
  console.log(
    `${label.padEnd(34)} ${String(result.failures.length).padStart(3)} of ${n} failed${what ? ` (${what})` : ""}; ` +
      `latency p50 ${ms(50)} ms, p95 ${ms(95)} ms, max ${result.latencies.at(-1)!.toFixed(0)} ms; wall ${result.wallMs.toFixed(0)} ms`,
  );
};

const standIn = await startNeonStandIn({ httpPort: 0 });
try {
  for (const n of sizes) report("fresh connections", n, await burst(standIn.endpoint, n, false));
  for (const n of sizes) {
    const { first, second } = await burstAfterHold(standIn.endpoint, { first: n, second: n, holdSeconds });
    report("pooled", n, first);
    report(`pooled, after a ${holdSeconds} s hold`, n, second);
  }
} finally {
  await standIn.close();
}
