import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DefaultReporter, type Reporter, type TestModule } from "vitest/node";
import { FIGURES, type FigureName, type Figures } from "./figures.ts";
import { leaksIn, maskLeaks } from "./leaks.ts";

type UserConsoleLog = Parameters<NonNullable<Reporter["onUserConsoleLog"]>>[0];

const RESULTS_DIR = "bench/results";

/**
 * The resilience suite's reporter: the default one, except that console lines (the Worker's
 * JSON logs, the dev stacks' output) are scanned for secrets instead of printed — there are
 * tens of thousands. At the end it adds the scan to the tests' figures, prints one table and
 * writes it as JSON under bench/results/. A leak fails the run.
 */
export default class ResilienceReporter extends DefaultReporter {
  private scanned = 0;
  private readonly leaks: string[] = [];

  override onUserConsoleLog(log: UserConsoleLog): void {
    for (const line of log.content.split("\n")) {
      if (line.trim() === "") continue;
      this.scanned += 1;
      const kinds = leaksIn(line);
      // Shown with each secret masked: printing the line as it is would print the secret.
      if (kinds.length > 0) this.leaks.push(`${kinds.join(", ")}: ${maskLeaks(line).slice(0, 300)}`);
    }
  }

  override onTestRunEnd(...args: Parameters<DefaultReporter["onTestRunEnd"]>): ReturnType<DefaultReporter["onTestRunEnd"]> {
    const [testModules] = args;
    const figures = sumFigures(testModules);
    figures.logLinesScanned = this.scanned;
    figures.logLeaks = this.leaks.length;
    const rows = (Object.keys(FIGURES) as FigureName[]).map((name) => {
      const figure: { label: string; zero?: true } = FIGURES[name];
      const value = figures[name] ?? 0;
      return { name, label: figure.label, value, promised: figure.zero ? 0 : undefined, held: !figure.zero || value === 0 };
    });
    const width = Math.max(...rows.map((row) => row.label.length));
    const table = [
      "",
      "Resilience figures",
      ...rows.map((row) => `  ${row.label.padEnd(width)}  ${String(row.value).padStart(7)}${row.promised === undefined ? "" : row.held ? "  (promised 0: held)" : "  (promised 0: BROKEN)"}`),
      ...this.leaks.slice(0, 20).map((leak) => `  leak: ${leak}`),
    ].join("\n");
    process.stdout.write(`${table}\n`);
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = join(RESULTS_DIR, `resilience-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
    writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), figures: Object.fromEntries(rows.map((r) => [r.name, r.value])), leaks: this.leaks }, null, 2)}\n`);
    process.stdout.write(`written to ${file}\n`);
    if (this.leaks.length > 0) process.exitCode = 1;
    return super.onTestRunEnd(...args);
  }
}

function sumFigures(testModules: ReadonlyArray<TestModule>): Figures {
  const sum: Figures = {};
  for (const module of testModules) {
    for (const test of module.children.allTests()) {
      for (const [name, count] of Object.entries(test.meta().figures ?? {}) as Array<[FigureName, number]>) {
        sum[name] = (sum[name] ?? 0) + count;
      }
    }
  }
  return sum;
}
