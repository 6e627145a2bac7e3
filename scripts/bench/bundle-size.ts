// Prints the production bundle's size against the SPEC §10 budget (≤ 1 MiB gzip).
// Measures what `wrangler deploy` would upload, via its dry run.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 1024 * 1024;
const outdir = mkdtempSync(join(tmpdir(), "charisma-bundle-"));
try {
  execFileSync("wrangler", ["deploy", "--dry-run", "--outdir", outdir], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  let raw = 0;
  let gzip = 0;
  for (const file of readdirSync(outdir)) {
    if (!file.endsWith(".js") && !file.endsWith(".mjs") && !file.endsWith(".wasm")) continue;
    const bytes = readFileSync(join(outdir, file));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`bundle: ${kib(raw)} raw, ${kib(gzip)} gzip`);
  console.log(`budget: ${kib(BUDGET_BYTES)} gzip — ${((gzip / BUDGET_BYTES) * 100).toFixed(1)}% used`);
  if (gzip > BUDGET_BYTES) process.exitCode = 1;
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
