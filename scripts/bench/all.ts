// `npm run bench`: starts one stack (stand-ins + the bench Worker) and runs every benchmark on
// it, then prints one table — measure, value, baseline measured in the same run, ratio, target,
// pass/fail — and writes it to bench/results/bench-<time>.json. `--compare <file>` adds the
// change against an earlier run's JSON. Exits 1 when a target is missed.
// Usage: npm run bench [-- --compare bench/results/bench-….json --quick]
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { benchApi } from "./api.ts";
import { benchGenerations, generationsBenchVars } from "./generations.ts";
import { benchLoad } from "./load.ts";
import { type BenchRun, formatTable, type Measure, passes, readRun, writeRun } from "./measures.ts";
import { benchRoom, roomBenchVars } from "./room.ts";
import { withBenchStack } from "./stack.ts";
import { benchStream, STREAM_BENCH_VARS } from "./stream.ts";

const { values } = parseArgs({ options: { compare: { type: "string" }, quick: { type: "boolean", default: false } } });
const previous = values.compare === undefined ? undefined : readRun(values.compare);
// --quick: a smoke run of every bench with few samples, to check the command itself.
const size = values.quick
  ? { api: { samples: 30, warmup: 5, messages: 30 }, load: { users: 20, connections: 10, seconds: 5, rate: 20 }, generations: { users: 5, generations: 10, count: 3 }, stream: { generations: 4, tokenDelayMs: 5 }, room: { sockets: 20, events: 100, batch: 1 } }
  : { api: { samples: 300, warmup: 30, messages: 30 }, load: { users: 200, connections: 50, seconds: 30, rate: 300 }, generations: { users: 100, generations: 200, count: 3 }, stream: { generations: 30, tokenDelayMs: 5 }, room: { sockets: 1000, events: 1000, batch: 1 } };

const measures: Measure[] = [];
// Every bench's vars at once: none touches the user, IP or AI rate limits the load bench runs under.
const vars = { ...STREAM_BENCH_VARS, ...generationsBenchVars(size.generations.generations + size.room.sockets), ...roomBenchVars(size.generations.generations + size.room.sockets) };
await withBenchStack(vars, async (stack) => {
  for (const [name, bench] of [
    ["api", () => benchApi(stack, size.api)],
    ["load", () => benchLoad(stack, size.load)],
    ["stream", () => benchStream(stack, size.stream)],
    ["generations", () => benchGenerations(stack, size.generations)],
    ["room", () => benchRoom(stack, size.room)],
  ] as const) {
    const began = performance.now();
    measures.push(...(await bench()));
    console.error(`${name} done in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  }
});

const run: BenchRun = { at: new Date().toISOString(), machine: { cpus: availableParallelism(), node: process.version }, measures };
console.log(formatTable(measures, previous));
console.log(`\nwritten to ${writeRun("bench", run)}`);
if (measures.some((measure) => passes(measure) === false)) process.exitCode = 1;
