import { neon, neonConfig } from "@neondatabase/serverless";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type NeonStandIn, startNeonStandIn } from "../local/neon-http/server.ts";
import { applyMigrations } from "./db-migrate.ts";

/** A drizzle-kit style migrations folder: journal + one .sql file per entry. */
function writeMigrations(entries: Array<{ tag: string; when: number; sql: string }>): string {
  const folder = mkdtempSync(join(tmpdir(), "migrations-"));
  mkdirSync(join(folder, "meta"));
  const journal = {
    version: "7",
    dialect: "postgresql",
    entries: entries.map((entry, idx) => ({ idx, version: "7", when: entry.when, tag: entry.tag, breakpoints: true })),
  };
  writeFileSync(join(folder, "meta", "_journal.json"), JSON.stringify(journal));
  for (const entry of entries) writeFileSync(join(folder, `${entry.tag}.sql`), entry.sql);
  return folder;
}

describe("applyMigrations", () => {
  let standIn: NeonStandIn;
  const options = () => ({ databaseUrl: standIn.connectionString, fetchEndpoint: standIn.endpoint });
  const query = (text: string) => neon(standIn.connectionString).query(text);

  // A fresh in-memory database per test: the journal of one must not hide another's migrations.
  beforeEach(async () => {
    standIn = await startNeonStandIn({ httpPort: 0 });
    neonConfig.fetchEndpoint = standIn.endpoint;
  });
  afterEach(() => standIn.close());

  it("applies the project's migrations once; a second run is a no-op", async () => {
    expect((await applyMigrations(options())).applied).toBeGreaterThanOrEqual(2);
    expect((await applyMigrations(options())).applied).toBe(0);
    const tables = (await query(`select count(*)::int as n from pg_tables where schemaname = 'public'`)) as Array<{ n: number }>;
    expect(tables[0]?.n).toBe(17);
  });

  it("applies a migration all or nothing, and records only what succeeded", async () => {
    const folder = writeMigrations([
      { tag: "0000_good", when: 1, sql: `CREATE TABLE "good" (id int);` },
      {
        tag: "0001_bad",
        when: 2,
        sql: `CREATE TABLE "half" (id int);\n--> statement-breakpoint\nCREATE TABLE "good" (id int);`,
      },
    ]);
    const failed = await applyMigrations({ ...options(), migrationsFolder: folder }).catch((error: unknown) => error);
    expect((failed as { code?: string }).code).toBe("42P07");
    const tables = (await query(`select tablename from pg_tables where tablename in ('good', 'half')`)) as Array<{
      tablename: string;
    }>;
    expect(tables.map((t) => t.tablename)).toEqual(["good"]);
    const journal = (await query(`select created_at::int as at from drizzle.__drizzle_migrations`)) as Array<{ at: number }>;
    expect(journal.map((row) => row.at)).toEqual([1]);
  });
});
