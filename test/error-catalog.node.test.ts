import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { README, withCurrentCatalog } from "../scripts/docs-errors";
import { type ErrorCode, errorCatalog } from "../src/lib/errors";

const src = resolve(import.meta.dirname, "../src");

function productionSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return productionSources(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

describe("the error catalog", () => {
  it("is what the README lists (npm run docs:errors writes it)", () => {
    const readme = readFileSync(README, "utf8");
    expect(withCurrentCatalog(readme)).toBe(readme);
  });

  it("holds no code the Worker never uses", () => {
    const code = productionSources(src)
      .filter((file) => !file.endsWith("lib/errors.ts"))
      .map((file) => readFileSync(file, "utf8"))
      .join("\n");
    const unused = (Object.keys(errorCatalog) as ErrorCode[]).filter((name) => !code.includes(`"${name}"`));
    expect(unused).toEqual([]);
  });

  it("gives every code a message, a line of documentation, and a place it shows", () => {
    for (const [name, entry] of Object.entries(errorCatalog) as [ErrorCode, (typeof errorCatalog)[ErrorCode]][]) {
      expect(entry.message.length, name).toBeGreaterThan(0);
      expect(entry.doc.length, name).toBeGreaterThan(0);
      expect("status" in entry || "close" in entry || "on" in entry, name).toBe(true);
    }
  });
});
