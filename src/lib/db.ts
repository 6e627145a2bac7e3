import { neon, neonConfig } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-http";
import * as schema from "../db/schema";
import type { AppConfig } from "./env";

export type Database = ReturnType<typeof createDatabase>;

/**
 * Drizzle over Neon's HTTP driver — the same code path in production and locally.
 * Locally `NEON_HTTP_ENDPOINT` points the driver at the PGlite stand-in; the driver only
 * honours that setting globally, so it is set here, once per isolate.
 */
export function createDatabase(config: Pick<AppConfig, "DATABASE_URL" | "NEON_HTTP_ENDPOINT">) {
  if (config.NEON_HTTP_ENDPOINT) neonConfig.fetchEndpoint = config.NEON_HTTP_ENDPOINT;
  return drizzle({ client: neon(config.DATABASE_URL), schema });
}
