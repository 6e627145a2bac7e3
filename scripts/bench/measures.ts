// What every bench reports, and the one table `npm run bench` prints from it.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Measure {
  /** What was measured, e.g. "GET /sessions/:id p50". */
  name: string;
  value: number;
  unit: "ms" | "KiB" | "req/s" | "USD" | "count" | "s";
  /** The same thing without the part under test, measured in the same run. */
  baseline?: number;
  /** What passes: the value — or, with `ratio`, value ÷ baseline — at most `max` / at least `min`. */
  target?: { max?: number; min?: number; ratio?: true };
  /** One short remark printed under the table (method, what the baseline is). */
  note?: string;
}

export interface BenchRun {
  at: string;
  machine: { cpus: number; node: string };
  measures: Measure[];
}

const RESULTS_DIR = "bench/results";

export const ratioOf = (measure: Measure) => (measure.baseline === undefined || measure.baseline === 0 ? undefined : measure.value / measure.baseline);

/** True, false, or undefined when the measure has no target. */
export function passes(measure: Measure): boolean | undefined {
  const { target } = measure;
  if (!target) return undefined;
  const subject = target.ratio ? ratioOf(measure) : measure.value;
  if (subject === undefined || Number.isNaN(subject)) return false;
  return (target.max === undefined || subject <= target.max) && (target.min === undefined || subject >= target.min);
}

const number = (value: number, unit: Measure["unit"]) =>
  unit === "USD" ? `$${value.toFixed(5)}` : unit === "count" ? String(Math.round(value)) : `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ${unit}`;

function targetText(measure: Measure): string {
  const { target } = measure;
  if (!target) return "";
  const of = (limit: number) => (target.ratio ? `${limit}×` : number(limit, measure.unit));
  return [target.max === undefined ? "" : `≤ ${of(target.max)}`, target.min === undefined ? "" : `≥ ${of(target.min)}`].filter(Boolean).join(", ");
}

/** The table: measure, value, baseline, ratio, target, pass/fail; with `previous`, the change against it. */
export function formatTable(measures: Measure[], previous?: BenchRun): string {
  const before = new Map(previous?.measures.map((measure) => [measure.name, measure]));
  const rows = measures.map((measure) => {
    const ratio = ratioOf(measure);
    const verdict = passes(measure);
    const earlier = before.get(measure.name);
    const change = earlier && earlier.value !== 0 ? `${(((measure.value - earlier.value) / earlier.value) * 100).toFixed(1)}%` : "";
    return [
      measure.name,
      number(measure.value, measure.unit),
      measure.baseline === undefined ? "" : number(measure.baseline, measure.unit),
      ratio === undefined ? "" : `${ratio.toFixed(2)}×`,
      targetText(measure),
      verdict === undefined ? "" : verdict ? "pass" : "FAIL",
      ...(previous ? [earlier ? `${number(earlier.value, earlier.unit)} (${change.startsWith("-") ? change : `+${change}`})` : "new"] : []),
    ];
  });
  const header = ["measure", "value", "baseline", "ratio", "target", "result", ...(previous ? [`before (${previous.at})`] : [])];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  const notes = measures.filter((measure) => measure.note).map((measure) => `  ${measure.name}: ${measure.note}`);
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line), ...(notes.length ? ["", ...notes] : [])].join("\n");
}

/** Writes the run to bench/results/<name>-<time>.json and returns the file's path. */
export function writeRun(name: string, run: BenchRun): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}-${run.at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(run, null, 2)}\n`);
  return file;
}

export function readRun(file: string): BenchRun {
  const run = JSON.parse(readFileSync(file, "utf8")) as BenchRun;
  if (!Array.isArray(run.measures)) throw new Error(`${file} is not a bench run (no measures)`);
  return run;
}
