// The production bundle against the SPEC §10 target (≤ 400 KiB gzip), what it is made of, and
// how long a cold isolate takes to start it (see worker-start.ts for the method).
// Measures what `wrangler deploy` would upload, via its dry run (with esbuild's metafile).
// Usage: npm run bench:bundle [-- --json <file> --top 10 --turns 5 --isolates 8]
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { composition } from "./bundle-composition.ts";
import { count } from "./stats.ts";
import { measureStart } from "./worker-start.ts";

const TARGET_GZIP_BYTES = 400 * 1024;
const root = fileURLToPath(new URL("../..", import.meta.url));
const { values } = parseArgs({
  options: {
    json: { type: "string" },
    top: { type: "string", default: "10" },
    turns: { type: "string", default: "5" },
    isolates: { type: "string", default: "8" },
  },
});

const outdir = mkdtempSync(join(tmpdir(), "charisma-bundle-"));
try {
  execFileSync("wrangler", ["deploy", "--dry-run", "--outdir", outdir, "--metafile", join(outdir, "meta.json")], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  // Every module wrangler would upload counts (the entry and any chunk or wasm beside it).
  let raw = 0;
  let gzip = 0;
  for (const file of readdirSync(outdir)) {
    if (!file.endsWith(".js") && !file.endsWith(".mjs") && !file.endsWith(".wasm")) continue;
    const bytes = readFileSync(join(outdir, file));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  const entry = join(outdir, "index.js");
  const packages = composition({
    root,
    outputFile: entry,
    code: readFileSync(entry, "utf8"),
    map: JSON.parse(readFileSync(`${entry}.map`, "utf8")),
    meta: JSON.parse(readFileSync(join(outdir, "meta.json"), "utf8")),
  });
  const turns = count(values, "turns");
  const isolates = count(values, "isolates");
  const wranglerToml = readFileSync(join(root, "wrangler.toml"), "utf8");
  const start = (await measureStart([outdir], { turns, isolates, wranglerToml }))[0]!;

  const top = packages.slice(0, count(values, "top"));
  const rest = packages.slice(top.length);
  const pass = gzip <= TARGET_GZIP_BYTES;
  const kib = (n: number) => (n / 1024).toFixed(1).padStart(9);
  const ms = (n: number | undefined) => (n === undefined ? "n/a" : `${n.toFixed(1)} ms`);
  const row = (label: string, rawBytes: number, gzipBytes: number, note = "") =>
    console.log(`${label.padEnd(28)}${kib(rawBytes)}${kib(gzipBytes)}${note}`);
  console.log(`${"bundle (wrangler dry run)".padEnd(28)}${"raw KiB".padStart(9)}${"gzip KiB".padStart(9)}`);
  for (const item of top) row(`  ${item.name}`, item.raw, item.gzip);
  if (rest.length > 0) {
    row(`  ${rest.length} others`, rest.reduce((sum, item) => sum + item.raw, 0), rest.reduce((sum, item) => sum + item.gzip, 0));
  }
  row("total", raw, gzip, `  target ≤ ${(TARGET_GZIP_BYTES / 1024).toFixed(0)} KiB gzip: ${pass ? "pass" : "FAIL"}`);
  console.log(
    `${"start (cold isolate)".padEnd(28)}${ms(start.cpuMs)} CPU = ${ms(start.loadCpuMs)} load + ${ms(start.firstRequestCpuMs)} first request ` +
      `(${ms(start.firstRequestWallMs)} wall), over a trivial Worker; medians of ${turns}×${isolates} isolates`,
  );
  console.log("(a package's gzip is its own bytes compressed alone, so the column sums to more than the total)");

  if (values.json) {
    mkdirSync(dirname(values.json), { recursive: true });
    writeFileSync(
      values.json,
      `${JSON.stringify(
        {
          bundle: { rawBytes: raw, gzipBytes: gzip, targetGzipBytes: TARGET_GZIP_BYTES, pass },
          packages: packages.map((item) => ({ name: item.name, rawBytes: item.raw, gzipBytesAlone: item.gzip })),
          start: { ...start, turns, isolates },
        },
        null,
        2,
      )}\n`,
    );
  }
  if (!pass) process.exitCode = 1;
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
