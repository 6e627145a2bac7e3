// `npm run bench`: starts one stack (stand-ins + the bench Worker) and runs every benchmark on
// it, then prints one table — measure, value, baseline measured in the same run, ratio, target,
// pass/fail — and writes it to bench/results/bench-<time>.json. `--compare <file>` adds the
// change against an earlier run's JSON. Exits 1 when a target is missed.
// Usage: npm run bench [-- --compare bench/results/bench-….json --quick]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchApi } from "./api.ts";
import { benchGenerations, generationsBenchVars } from "./generations.ts";
import { benchLoad } from "./load.ts";
import { benchOpeners } from "./openers.ts";
import { type BenchRun, formatTable, type Measure, passes, readRun, writeRun } from "./measures.ts";
import { benchRoom, roomBenchVars } from "./room.ts";
import { withBenchStack } from "./stack.ts";
import { benchStream, STREAM_BENCH_VARS } from "./stream.ts";

const { values } = parseArgs({ options: { compare: { type: "string" }, quick: { type: "boolean", default: false } } });
const previous = values.compare === undefined ? undefined : readRun(values.compare);
// --quick: a smoke run of every bench with few samples, to check the command itself.
const size = values.quick
  ? { api: { samples: 30, warmup: 5, messages: 30 }, load: { users: 20, connections: 10, seconds: 5, rate: 20 }, generations: { users: 5, generations: 10, count: 3 }, openers: { generations: 3, count: 3 }, stream: { generations: 4, tokenDelayMs: 5 }, room: { sockets: 20, events: 100, batch: 1 } }
  : { api: { samples: 300, warmup: 30, messages: 30 }, load: { users: 200, connections: 50, seconds: 30, rate: 300 }, generations: { users: 100, generations: 200, count: 3 }, openers: { generations: 20, count: 3 }, stream: { generations: 30, tokenDelayMs: 5 }, room: { sockets: 1000, events: 1000, batch: 1 } };

const measures: Measure[] = [];
// Every bench's vars at once: none touches the user, IP or AI rate limits the load bench runs under.
const vars = { ...STREAM_BENCH_VARS, ...generationsBenchVars(size.generations.generations + size.room.sockets), ...roomBenchVars(size.generations.generations + size.room.sockets) };
await withBenchStack(vars, async (stack) => {
  for (const [name, bench] of [
    ["api", () => benchApi(stack, size.api)],
    ["load", () => benchLoad(stack, size.load)],
    ["stream", () => benchStream(stack, size.stream)],
    ["generations", () => benchGenerations(stack, size.generations)],
    ["openers", () => benchOpeners(stack, size.openers)],
    ["room", () => benchRoom(stack, size.room)],
  ] as const) {
    const began = performance.now();
    measures.push(...(await bench()));
    console.error(`${name} done in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  }
});

// The bundle and a cold start need no stack: bench:bundle builds and measures them, and hands its figures over as JSON.
const scratch = mkdtempSync(join(tmpdir(), "charisma-bench-"));
try {
  const file = join(scratch, "bundle.json");
  // It exits 1 over its target; the table says so too, so only a missing file is a failure here.
  spawnSync(process.execPath, ["scripts/bench/bundle-size.ts", "--json", file, ...(values.quick ? ["--turns", "1", "--isolates", "2"] : [])], { stdio: ["ignore", "ignore", "inherit"] });
  const bundle = JSON.parse(readFileSync(file, "utf8")) as { bundle: { rawBytes: number; gzipBytes: number }; packages: Array<{ name: string; gzipBytesAlone: number }>; start: { cpuMs?: number; loadCpuMs?: number; firstRequestCpuMs?: number } };
  const largest = bundle.packages.slice(0, 5).map((item) => `${item.name} ${(item.gzipBytesAlone / 1024).toFixed(0)}`).join(", ");
  measures.push(
    { name: "bundle (gzip)", value: bundle.bundle.gzipBytes / 1024, unit: "KiB", target: { max: 400 }, note: `${(bundle.bundle.rawBytes / 1024).toFixed(0)} KiB raw; largest packages (KiB gzip alone): ${largest}` },
    { name: "Worker start, CPU over a trivial Worker", value: bundle.start.cpuMs ?? NaN, unit: "ms", note: `load ${bundle.start.loadCpuMs?.toFixed(1)} ms + first request ${bundle.start.firstRequestCpuMs?.toFixed(1)} ms, medians over cold isolates` },
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

const run: BenchRun = { at: new Date().toISOString(), machine: { cpus: availableParallelism(), node: process.version }, measures };
console.log(formatTable(measures, previous));
console.log(`\nwritten to ${writeRun("bench", run)}`);
if (measures.some((measure) => passes(measure) === false)) process.exitCode = 1;
