import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const src = resolve(import.meta.dirname, "../src");

/**
 * Which feature owns each table: the one whose service creates its rows. Only the owner reads
 * or writes it; every other feature asks the owner's service (or embeds an expression the owner
 * builds, for a read that must stay one statement).
 */
const owners: Record<string, string> = {
  users: "modules/users",
  pushTokens: "modules/users",
  pushTickets: "modules/notifications",
  webhookEvents: "modules/webhooks",
  sessions: "modules/sessions",
  messages: "modules/sessions",
  sessionImages: "modules/uploads",
  suggestionGenerations: "modules/suggestions",
  suggestions: "modules/suggestions",
  openerGenerations: "modules/openers",
  magicOpeners: "modules/openers",
  jobRuns: "modules/jobs",
  aiCalls: "ai",
  knowledgeChunks: "ai",
  tips: "modules/tips",
  tipDeliveries: "modules/tips",
  tipTranslations: "modules/tips",
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [join(dir, entry.name)] : [],
  );
}

/** The tables a file imports from db/schema as values (a type-only import reads nothing). */
function tablesImportedBy(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^import\s+(type\s+)?\{([^}]*)\}\s+from\s+"[./]+\/db\/schema";/gm)].flatMap(([, typeOnly, names]) =>
    typeOnly
      ? []
      : names!
          .split(",")
          .map((name) => name.trim())
          .filter((name) => name && !name.startsWith("type "))
          .map((name) => name.split(/\s+as\s+/)[0]!)
          .filter((name) => name in owners),
  );
}

describe("table ownership", () => {
  it("gives every table of the schema an owner", () => {
    const tables = [...readFileSync(join(src, "db/schema.ts"), "utf8").matchAll(/^export const (\w+) = pgTable\(/gm)].map((match) => match[1]!);
    expect(tables.length).toBeGreaterThan(10);
    expect(tables.filter((table) => !(table in owners))).toEqual([]);
  });

  it("lets only a table's owner read or write it", () => {
    const files = [...sourceFiles(join(src, "modules")), ...sourceFiles(join(src, "ai"))];
    const offenders = files.flatMap((file) => {
      const path = relative(src, file);
      return tablesImportedBy(file)
        .filter((table) => !path.startsWith(`${owners[table]}/`))
        .map((table) => `${path} → ${table} (owned by ${owners[table]})`);
    });
    expect(offenders).toEqual([]);
  });

  it("finds the imports it checks (the scan itself works)", () => {
    expect(tablesImportedBy(join(src, "modules/sessions/live.ts"))).toEqual(["sessions"]);
    expect(tablesImportedBy(join(src, "modules/sessions/schemas.ts"))).toEqual([]);
  });
});
