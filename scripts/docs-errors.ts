// `npm run docs:errors`: writes the error catalog (src/lib/errors.ts) into README.md between
// its error-catalog markers, so the README lists every code exactly as the code declares it.
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { errorCatalogMarkdown } from "../src/lib/errors";

export const README = resolve(import.meta.dirname, "../README.md");
const START = "<!-- error-catalog:start (npm run docs:errors) -->";
const END = "<!-- error-catalog:end -->";

/** The README with its catalog section replaced by the current catalog. */
export function withCurrentCatalog(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${START} … ${END} section`);
  return `${readme.slice(0, start + START.length)}\n${errorCatalogMarkdown()}\n${readme.slice(end)}`;
}

if (process.argv[1] === import.meta.filename) {
  writeFileSync(README, withCurrentCatalog(readFileSync(README, "utf8")));
  console.log("docs:errors: README.md lists the current error catalog");
}
