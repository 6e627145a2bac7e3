import type { Readable } from "node:stream";
import { createInterface } from "node:readline";

const colors = [36, 35, 33, 32, 34, 31];
const width = 7;
let next = 0;

/** A line logger with a fixed-width, coloured `[name]` prefix so interleaved output stays readable. */
export function prefixedLog(name: string): (line: string) => void {
  const color = colors[next++ % colors.length];
  const label = `[${name}]`.padEnd(width + 2);
  const prefix = process.stdout.isTTY ? `\u001b[${color}m${label}\u001b[0m` : label;
  return (line: string) => {
    for (const part of line.split("\n")) if (part.trim()) process.stdout.write(`${prefix} ${part}\n`);
  };
}

/** Forwards a child's output line by line through `log`. */
export function pipeLines(stream: Readable | null, log: (line: string) => void): void {
  if (!stream) return;
  createInterface({ input: stream }).on("line", log);
}
