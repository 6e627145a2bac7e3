// Worker start: what a cold isolate spends before it answers, measured in workerd itself.
//
// Two parts, both in CPU time of the workerd process (Linux /proc; the resource Cloudflare's
// startup limit counts, and far less disturbed by other processes on a shared machine than
// wall time):
// - load: workerd compiles every module of a Worker when it creates the isolate, imported or
//   not. Each sample starts a workerd with N isolates of one build and reads the CPU it used
//   until it was ready; the same for a trivial Worker is subtracted and the rest divided by N.
// - first request: each isolate's entry module imports the built Worker only on its first
//   request, then lets it answer GET /api/v1/health (liveness, no I/O): evaluating the module's
//   top level plus one trivial answer (the method `wrangler check startup` profiles). The
//   trivial Worker's first request is subtracted.
// Builds are measured in turns (trivial, A, B, trivial, B, A, …), medians over the turns.
//
// Usage: node scripts/bench/worker-start.ts <outdir> [<outdir> …] [--turns 5 --isolates 8]
// (each outdir is a `wrangler deploy --dry-run --outdir` result; several are compared in one run)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { count } from "./stats.ts";

export interface StartTime {
  /** Median CPU ms to compile the Worker's modules when an isolate is created, over a trivial Worker's. */
  loadCpuMs: number | undefined;
  /** Median CPU ms of an isolate's first request (evaluating the Worker, one answer), over a trivial Worker's. */
  firstRequestCpuMs: number | undefined;
  /** The two together: the CPU a cold isolate costs before its first answer. */
  cpuMs: number | undefined;
  /** Median wall ms of the first request, over a trivial Worker's (load has no wall time of its own). */
  firstRequestWallMs: number;
  /** The trivial Worker's own medians: a whole workerd's load, one first request (CPU, wall). */
  baseline: { loadCpuMs: number | undefined; firstRequestCpuMs: number | undefined; firstRequestWallMs: number };
}

type Module = { type: "ESModule"; path: string; contents: string };

const ENTRY = "start-probe.js";
const PROBE = `
let worker;
export default {
  async fetch(request, env, ctx) {
    worker ??= (await import("./index.js")).default;
    return worker.fetch(request, env, ctx);
  },
};`;
const TRIVIAL: Module[] = [{ type: "ESModule", path: "/index.js", contents: `export default { fetch() { return new Response("ok"); } };` }];

/** The compatibility settings the Worker is deployed with, from wrangler.toml. */
function compatibility(wranglerToml: string) {
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(wranglerToml)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(wranglerToml)?.[1];
  if (!date) throw new Error("wrangler.toml has no compatibility_date");
  return { compatibilityDate: date, compatibilityFlags: [...(flags ?? "").matchAll(/"([^"]+)"/g)].map((match) => match[1]!) };
}

/** The modules of a dry-run outdir (the entry is index.js; any other .js are its chunks). */
function modulesOf(outdir: string): Module[] {
  return readdirSync(outdir)
    .filter((file) => file.endsWith(".js") || file.endsWith(".mjs"))
    .map((file) => ({ type: "ESModule", path: `/${file}`, contents: readFileSync(join(outdir, file), "utf8") }));
}

/** The workerd process Miniflare started (a child of this process), by its command name. */
function workerdPid(): string | undefined {
  try {
    const children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").trim().split(/\s+/);
    return children.find((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd");
  } catch {
    return undefined;
  }
}

/**
 * CPU ms a process has used so far, summed over its threads with nanosecond precision
 * (schedstat). workerd keeps its threads for its whole life, so none of its time is lost.
 */
function threadsCpuMs(pid: string | undefined): number | undefined {
  if (!pid) return undefined;
  let ns = 0;
  try {
    for (const thread of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${thread}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // A thread that ended between listing and reading.
      }
    }
  } catch {
    return undefined;
  }
  return ns / 1e6;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const medianOrUndefined = (values: (number | undefined)[]) =>
  values.every((value) => value !== undefined) && values.length > 0 ? median(values as number[]) : undefined;
const minus = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a - b);

/** One turn: a workerd with `isolates` copies of one build; its load and each first request. */
async function turn(modules: Module[], options: { isolates: number; settings: ReturnType<typeof compatibility> }) {
  const workers = Array.from({ length: options.isolates }, (_, index) => ({
    name: `isolate${index}`,
    ...options.settings,
    modulesRoot: "/",
    modules: [{ type: "ESModule" as const, path: `/${ENTRY}`, contents: PROBE }, ...modules],
  }));
  const mf = new Miniflare(convertV4MiniflareOptions({ workers, handleStructuredLogs: () => {} }));
  try {
    await mf.ready;
    const pid = workerdPid();
    const load = threadsCpuMs(pid);
    const cpu: (number | undefined)[] = [];
    const wall: number[] = [];
    for (let index = 0; index < options.isolates; index++) {
      const worker = await mf.getWorker(`isolate${index}`);
      const cpuBefore = threadsCpuMs(pid);
      const started = performance.now();
      const response = await worker.fetch("http://localhost/api/v1/health");
      await response.arrayBuffer();
      wall.push(performance.now() - started);
      cpu.push(minus(threadsCpuMs(pid), cpuBefore));
      if (response.status !== 200) throw new Error(`GET /api/v1/health answered ${response.status} in a cold isolate`);
    }
    return { load, cpu, wall };
  } finally {
    await mf.dispose();
  }
}

/** Start costs of each built Worker (dry-run outdirs), measured in turns with a trivial Worker. */
export async function measureStart(
  outdirs: string[],
  options: { turns: number; isolates: number; wranglerToml: string },
): Promise<StartTime[]> {
  const settings = compatibility(options.wranglerToml);
  const variants = [TRIVIAL, ...outdirs.map(modulesOf)];
  const loads = variants.map((): (number | undefined)[] => []);
  const cpu = variants.map((): (number | undefined)[] => []);
  const wall = variants.map((): number[] => []);
  for (let round = 0; round < options.turns; round++) {
    // Rotate who goes first, so that no build always follows another.
    for (let step = 0; step < variants.length; step++) {
      const variant = (round + step) % variants.length;
      const result = await turn(variants[variant]!, { isolates: options.isolates, settings });
      loads[variant]!.push(result.load);
      cpu[variant]!.push(...result.cpu);
      wall[variant]!.push(...result.wall);
    }
  }
  const baseline = {
    loadCpuMs: medianOrUndefined(loads[0]!),
    firstRequestCpuMs: medianOrUndefined(cpu[0]!),
    firstRequestWallMs: median(wall[0]!),
  };
  return outdirs.map((_, index) => {
    const variant = index + 1;
    const loadCpuMs = medianOrUndefined(loads[variant]!.map((load, turnIndex) => minus(load, loads[0]![turnIndex])));
    const perIsolate = loadCpuMs === undefined ? undefined : loadCpuMs / options.isolates;
    const firstRequestCpuMs = minus(medianOrUndefined(cpu[variant]!), baseline.firstRequestCpuMs);
    return {
      loadCpuMs: perIsolate,
      firstRequestCpuMs,
      cpuMs: perIsolate === undefined || firstRequestCpuMs === undefined ? undefined : perIsolate + firstRequestCpuMs,
      firstRequestWallMs: median(wall[variant]!) - baseline.firstRequestWallMs,
      baseline,
    };
  });
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { turns: { type: "string", default: "5" }, isolates: { type: "string", default: "8" } },
  });
  if (positionals.length === 0) throw new Error("Usage: node scripts/bench/worker-start.ts <outdir> [<outdir> …] [--turns 5 --isolates 8]");
  const wranglerToml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");
  const turns = count(values, "turns");
  const isolates = count(values, "isolates");
  const results = await measureStart(positionals, { turns, isolates, wranglerToml });
  const ms = (value: number | undefined) => (value === undefined ? "n/a" : value.toFixed(1)).padStart(8);
  console.log(`Worker start over a trivial Worker, medians of ${turns} turns × ${isolates} isolates (ms)`);
  console.log(`${"".padEnd(40)}${"load CPU".padStart(8)}${"1st CPU".padStart(8)}${"CPU".padStart(8)}${"1st wall".padStart(9)}`);
  results.forEach((result, index) =>
    console.log(`${positionals[index]!.padEnd(40)}${ms(result.loadCpuMs)}${ms(result.firstRequestCpuMs)}${ms(result.cpuMs)} ${ms(result.firstRequestWallMs)}`),
  );
  const base = results[0]!.baseline;
  console.log(`${"trivial Worker (whole workerd load)".padEnd(40)}${ms(base.loadCpuMs)}${ms(base.firstRequestCpuMs)}${"".padStart(8)} ${ms(base.firstRequestWallMs)}`);
}
