// What the benches share to read their options and report their samples.

/** A command-line count: a positive integer, or a clear error naming the option. */
export function count(options: Record<string, string | undefined>, name: string): number {
  const value = Number(options[name]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, not ${options[name]}`);
  return value;
}

/** Nearest-rank percentile of already sorted values. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
