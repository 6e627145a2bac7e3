import { defineConfig } from "drizzle-kit";

// `generate` needs no database. `studio` talks to the local stack's wire-protocol port
// (or to the DATABASE_URL you export).
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./migrations",
  dbCredentials: {
    url: process.env.DATABASE_URL ?? "postgresql://postgres:postgres@127.0.0.1:5433/postgres",
  },
  strict: true,
  verbose: true,
});
