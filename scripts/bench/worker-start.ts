// Worker start: what a cold isolate spends before it answers, measured in workerd itself.
//
// Method (the one `wrangler check startup` uses to profile startup, timed instead of sampled):
// each sample is a fresh isolate whose entry module only imports the built Worker on its first
// request, then lets the Worker answer GET /api/v1/health (liveness, no I/O). That first request
// therefore costs compiling and evaluating the Worker's module plus one trivial answer. The same
// is done, interleaved, for a trivial Worker (`new Response("ok")`) in the same workerd process;
// its cost (routing a request into workerd and back) is subtracted.
//
// Two clocks: the CPU time workerd's threads used during the request (Linux schedstat, ns; what
// Cloudflare's startup limit counts, and far less disturbed by other processes on a shared
// machine than wall time) and the wall time the request took. Medians over the samples.
//
// Usage: node scripts/bench/worker-start.ts <outdir> [<outdir> …] [--samples 10]
// (each outdir is a `wrangler deploy --dry-run --outdir` result; several are compared in one run)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { count } from "./stats.ts";

export interface StartTime {
  /** Median CPU ms of a cold first request, minus the trivial Worker's; undefined off Linux. */
  cpuMs: number | undefined;
  /** Median wall ms of a cold first request, minus the trivial Worker's. */
  wallMs: number;
  /** The trivial Worker's own medians, the baseline subtracted above. */
  baseline: { cpuMs: number | undefined; wallMs: number };
}

const ENTRY = "start-probe.js";
const PROBE = `
let worker;
export default {
  async fetch(request, env, ctx) {
    worker ??= (await import("./index.js")).default;
    return worker.fetch(request, env, ctx);
  },
};`;
const TRIVIAL = `export default { fetch() { return new Response("ok"); } };`;

/** The compatibility settings the Worker is deployed with, from wrangler.toml. */
function compatibility(wranglerToml: string) {
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(wranglerToml)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(wranglerToml)?.[1];
  if (!date) throw new Error("wrangler.toml has no compatibility_date");
  return { compatibilityDate: date, compatibilityFlags: [...(flags ?? "").matchAll(/"([^"]+)"/g)].map((match) => match[1]!) };
}

/** The modules of a dry-run outdir (the entry is index.js; any other .js are its chunks). */
function modulesOf(outdir: string) {
  return readdirSync(outdir)
    .filter((file) => file.endsWith(".js") || file.endsWith(".mjs"))
    .map((file) => ({ type: "ESModule" as const, path: `/${file}`, contents: readFileSync(join(outdir, file), "utf8") }));
}

/** CPU ms used so far by every thread of a process, or undefined where schedstat is missing. */
function cpuMsOf(pid: string | undefined): number | undefined {
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

/** The workerd process Miniflare started (a child of this process), by its command name. */
function workerdPid(): string | undefined {
  try {
    const children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").trim().split(/\s+/);
    return children.find((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd");
  } catch {
    return undefined;
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Start times of each built Worker (dry-run outdirs), measured in one workerd, interleaved. */
export async function measureStart(outdirs: string[], options: { samples: number; wranglerToml: string }): Promise<StartTime[]> {
  const settings = compatibility(options.wranglerToml);
  const variants = [[{ type: "ESModule" as const, path: "/index.js", contents: TRIVIAL }], ...outdirs.map(modulesOf)];
  const name = (variant: number, sample: number) => `v${variant}s${sample}`;
  const workers = variants.flatMap((modules, variant) =>
    Array.from({ length: options.samples }, (_, sample) => ({
      name: name(variant, sample),
      ...settings,
      modulesRoot: "/",
      modules: [{ type: "ESModule" as const, path: `/${ENTRY}`, contents: PROBE }, ...modules],
    })),
  );
  const mf = new Miniflare(convertV4MiniflareOptions({ workers, handleStructuredLogs: () => {} }));
  try {
    await mf.ready;
    const pid = workerdPid();
    const cpu = variants.map((): number[] => []);
    const wall = variants.map((): number[] => []);
    for (let sample = 0; sample < options.samples; sample++) {
      // Rotate who goes first, so no variant always runs right after another's garbage.
      for (let step = 0; step < variants.length; step++) {
        const variant = (sample + step) % variants.length;
        const worker = await mf.getWorker(name(variant, sample));
        const cpuBefore = cpuMsOf(pid);
        const started = performance.now();
        const response = await worker.fetch("http://localhost/api/v1/health");
        await response.arrayBuffer();
        wall[variant]!.push(performance.now() - started);
        const cpuAfter = cpuMsOf(pid);
        if (cpuBefore !== undefined && cpuAfter !== undefined) cpu[variant]!.push(cpuAfter - cpuBefore);
        if (response.status !== 200) throw new Error(`GET /api/v1/health answered ${response.status} in a cold isolate`);
      }
    }
    const cpuMedian = (variant: number) => (cpu[variant]!.length === options.samples ? median(cpu[variant]!) : undefined);
    const baseline = { cpuMs: cpuMedian(0), wallMs: median(wall[0]!) };
    return outdirs.map((_, index) => {
      const cpuMs = cpuMedian(index + 1);
      return {
        cpuMs: cpuMs === undefined || baseline.cpuMs === undefined ? undefined : cpuMs - baseline.cpuMs,
        wallMs: median(wall[index + 1]!) - baseline.wallMs,
        baseline,
      };
    });
  } finally {
    await mf.dispose();
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { samples: { type: "string", default: "10" } } });
  if (positionals.length === 0) throw new Error("Usage: node scripts/bench/worker-start.ts <outdir> [<outdir> …] [--samples 10]");
  const wranglerToml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");
  const results = await measureStart(positionals, { samples: count(values, "samples"), wranglerToml });
  const ms = (value: number | undefined) => (value === undefined ? "n/a" : value.toFixed(1));
  console.log(`Worker start, cold first request minus a trivial Worker's (median of ${values.samples}): CPU ms, wall ms`);
  results.forEach((result, index) => console.log(`  ${positionals[index]}: ${ms(result.cpuMs)}, ${ms(result.wallMs)}`));
  console.log(`  trivial Worker itself: ${ms(results[0]?.baseline.cpuMs)}, ${ms(results[0]?.baseline.wallMs)}`);
}
