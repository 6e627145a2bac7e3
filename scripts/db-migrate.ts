// Applies migrations/ to DATABASE_URL over Neon's HTTP driver: the same path for a real
// Neon database and for the local stand-in (set NEON_HTTP_ENDPOINT to reach the latter).
//
// Why not drizzle's neon-http migrator: it runs each statement on its own and records the
// migration only at the end, so a failure half-way leaves a half-applied schema that the
// next run trips over. Here each migration is one transaction (statements + journal row),
// in drizzle's own journal table, so drizzle-kit still sees what was applied.
import { neon, neonConfig } from "@neondatabase/serverless";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { fileURLToPath, pathToFileURL } from "node:url";

const JOURNAL = `"drizzle"."__drizzle_migrations"`;
// Two deploys migrating at once queue behind this lock instead of interleaving DDL.
const LOCK_ID = 7_320_461_118;

export interface MigrateOptions {
  databaseUrl: string;
  /** Local stand-in only; unset for a real Neon database. */
  fetchEndpoint?: string;
  migrationsFolder?: string;
  log?: (line: string) => void;
}

export async function applyMigrations(options: MigrateOptions): Promise<{ applied: number }> {
  const log = options.log ?? (() => {});
  if (options.fetchEndpoint) neonConfig.fetchEndpoint = options.fetchEndpoint;
  const sql = neon(options.databaseUrl);
  const migrationsFolder = options.migrationsFolder ?? fileURLToPath(new URL("../migrations", import.meta.url));
  const migrations = readMigrationFiles({ migrationsFolder });

  await sql.transaction([
    sql.query(`CREATE SCHEMA IF NOT EXISTS "drizzle"`),
    sql.query(
      `CREATE TABLE IF NOT EXISTS ${JOURNAL} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`,
    ),
  ]);
  const rows = (await sql.query(`SELECT created_at FROM ${JOURNAL} ORDER BY created_at DESC LIMIT 1`)) as Array<{
    created_at: string | number | null;
  }>;
  const last = rows[0]?.created_at == null ? -1 : Number(rows[0].created_at);

  let applied = 0;
  for (const migration of migrations) {
    if (migration.folderMillis <= last) continue;
    const statements = migration.sql.map((statement) => statement.trim()).filter(Boolean);
    await sql.transaction([
      sql.query(`SELECT pg_advisory_xact_lock(${LOCK_ID})`),
      ...statements.map((statement) => sql.query(statement)),
      sql.query(`INSERT INTO ${JOURNAL} (hash, created_at) VALUES ($1, $2)`, [
        migration.hash,
        migration.folderMillis,
      ]),
    ]);
    applied += 1;
    log(`applied migration ${migration.folderMillis} (${statements.length} statements)`);
  }
  log(applied === 0 ? "database schema is up to date" : `applied ${applied} migration(s)`);
  return { applied };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error("DATABASE_URL is not set. Example: DATABASE_URL=postgresql://… npm run db:migrate");
    process.exit(1);
  }
  applyMigrations({
    databaseUrl,
    fetchEndpoint: process.env.NEON_HTTP_ENDPOINT,
    log: (line) => console.log(`[migrate] ${line}`),
  }).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`[migrate] failed: ${message}`);
    process.exit(1);
  });
}
