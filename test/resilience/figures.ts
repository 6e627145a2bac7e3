// What the resilience suite counts. Each test adds its counts to its own task's meta; the
// suite's reporter (reporter.ts) sums them over every test and prints one table.

/** The figures in the table's order; `zero` marks the ones promised to be 0. */
export const FIGURES = {
  faultsInjected: { label: "dependency faults injected" },
  faultsRecovered: { label: "recovered without a manual step" },
  operationsTried: { label: "operations tried during faults" },
  operationsConsistent: { label: "ended in a consistent state" },
  rowsLost: { label: "acknowledged rows lost", zero: true },
  faultAnswers5xx: { label: "answers with a 500 or internals during faults", zero: true },
  duplicateDeliveries: { label: "extra job deliveries (twice, out of order, concurrent)" },
  duplicateEffects: { label: "duplicate rows or room events", zero: true },
  reconnects: { label: "forced disconnects, resumed" },
  roomRestarts: { label: "rooms evicted mid-stream" },
  eventsLost: { label: "events lost", zero: true },
  eventsDuplicated: { label: "events duplicated or out of order", zero: true },
  badInputs: { label: "bad inputs (HTTP and socket frames)" },
  answers5xx: { label: "5xx answers to bad input", zero: true },
  hangs: { label: "hangs over 5 s", zero: true },
  socketsWronglyClosed: { label: "sockets closed where the protocol keeps them open", zero: true },
  attacks: { label: "attacks tried" },
  attacksAccepted: { label: "attacks accepted", zero: true },
  logLinesScanned: { label: "log lines scanned" },
  logLeaks: { label: "log leaks", zero: true },
} as const satisfies Record<string, { label: string; zero?: true }>;

export type FigureName = keyof typeof FIGURES;
export type Figures = Partial<Record<FigureName, number>>;

declare module "vitest" {
  interface TaskMeta {
    figures?: Figures;
  }
}

/** Adds counts to a test's figures: `countFigures(task, { attacks: 1 })` from a test's context. */
export function countFigures(task: { meta: { figures?: Figures } }, counts: Figures): void {
  const figures = (task.meta.figures ??= {});
  for (const [name, count] of Object.entries(counts) as Array<[FigureName, number]>) {
    figures[name] = (figures[name] ?? 0) + count;
  }
}
