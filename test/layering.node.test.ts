import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const src = resolve(import.meta.dirname, "../src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

/** Every relative import of a file, resolved to a path under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gms)].map((match) => relative(src, resolve(file, "..", match[1]!)));
}

describe("the layering of src/", () => {
  it("keeps lib/ below realtime/ and modules/: lib imports neither", () => {
    const offenders = sourceFiles(join(src, "lib")).flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith("realtime/") || target.startsWith("modules/"))
        .map((target) => `${relative(src, file)} → ${target}`),
    );
    expect(offenders).toEqual([]);
  });

  it("keeps realtime/ free of features: it knows room kinds, not sessions or openers", () => {
    const offenders = sourceFiles(join(src, "realtime"))
      .filter((file) => !file.endsWith(".test.ts"))
      .flatMap((file) => importsOf(file).filter((target) => target.startsWith("modules/")).map((target) => `${relative(src, file)} → ${target}`));
    expect(offenders).toEqual([]);
  });

  it("finds the imports it checks (the scan itself works)", () => {
    expect(importsOf(join(src, "app.ts"))).toContain("features");
  });
});
