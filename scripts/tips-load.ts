// `npm run tips:load`: upserts the daily tips of content/tips/*.md into the tips table and
// deactivates the ones that left the files (`npm run dev` runs it at start). Defaults to the
// local stack on its default ports (LOCAL_POSTGRES_PORT / LOCAL_NEON_HTTP_PORT move them); with
// DATABASE_URL set (and NEON_HTTP_ENDPOINT unset) it loads a real Neon database.
// Runs under tsx because it shares the Worker's modules, whose imports carry no extensions.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createDatabase } from "../src/lib/db";
import { parseTipFiles } from "../src/modules/tips/catalog";
import { loadTips } from "../src/modules/tips/load";

export const tipsFolder = fileURLToPath(new URL("../content/tips", import.meta.url));

/** The tip files as the loader reads them, in name order. */
export function readTipFiles(folder = tipsFolder): Array<{ name: string; text: string }> {
  return readdirSync(folder)
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(folder, name), "utf8") }));
}

async function main(): Promise<void> {
  const usingLocal = !process.env.DATABASE_URL;
  const DATABASE_URL = process.env.DATABASE_URL ?? `postgresql://postgres:postgres@127.0.0.1:${process.env.LOCAL_POSTGRES_PORT ?? 5433}/postgres`;
  const NEON_HTTP_ENDPOINT = usingLocal ? `http://127.0.0.1:${process.env.LOCAL_NEON_HTTP_PORT ?? 5480}/sql` : process.env.NEON_HTTP_ENDPOINT || undefined;
  const files = readTipFiles();
  const seeds = await parseTipFiles(files);
  console.log(`[tips] ${seeds.length} tips in ${files.length} files → ${usingLocal ? "the local stack" : "DATABASE_URL"}`);
  try {
    const result = await loadTips(createDatabase({ DATABASE_URL, NEON_HTTP_ENDPOINT }), seeds);
    console.log(`[tips] written ${result.written}, unchanged ${result.total - result.written}, deactivated ${result.deactivated}`);
  } catch (error) {
    console.error(`[tips] failed: ${error instanceof Error ? error.message : String(error)} — is \`npm run dev\` running?`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
