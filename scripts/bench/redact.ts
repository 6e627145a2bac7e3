// `npm run bench:redact`: how long the logger's redaction takes on adversarial strings (long
// runs of address characters with no address in them), at 32k and 256k characters. A pattern
// that backtracks grows with the square of the length; the logger's must grow linearly.
// Usage: npm run bench:redact [-- --sizes 32768,262144]
import { parseArgs } from "node:util";
import { redact } from "../../src/lib/logger";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "32768,262144" } } });
const sizes = values.sizes.split(",").map(Number);

const shapes: Record<string, (size: number) => string> = {
  "one run, '@' last": (size) => "a".repeat(size - 1) + "@",
  "dotted run, '@x' last": (size) => "a.".repeat(size / 2 - 1) + "@x",
  "'@' then a domain with no dot": (size) => "a@" + "b".repeat(size - 2),
  "'@' then dots, no TLD": (size) => "a@" + "b.".repeat(size / 2 - 1),
  "prose with one address": (size) => "see you at nine ".repeat(size / 16 - 2) + "ann@example.com",
};

for (const size of sizes) {
  for (const [name, make] of Object.entries(shapes)) {
    const input = make(size);
    const started = performance.now();
    redact(input);
    console.log(`${String(input.length).padStart(7)} chars  ${name.padEnd(32)} ${(performance.now() - started).toFixed(1).padStart(9)} ms`);
  }
}
