import { neon, neonConfig } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-http";
import * as schema from "../db/schema";
import type { AppConfig } from "./env";

export type Database = ReturnType<typeof createDatabase>;

type EndpointFn = (host: string, port: number | string, options?: { jwtAuth?: boolean }) => string;

// Neon's own routing (https://api.<host>/sql), captured before anything replaces it.
const neonEndpoint = neonConfig.fetchEndpoint as EndpointFn;
// Locally, database hosts answered by a stand-in endpoint instead of Neon.
const localEndpoints = new Map<string, string>();

/**
 * Drizzle over Neon's HTTP driver — the same code path in production and locally. The driver
 * takes its endpoint only from a global setting, so locally (`NEON_HTTP_ENDPOINT`) that setting
 * routes by database host: each DATABASE_URL keeps its own endpoint, whatever was created last.
 */
export function createDatabase(config: Pick<AppConfig, "DATABASE_URL" | "NEON_HTTP_ENDPOINT">) {
  if (config.NEON_HTTP_ENDPOINT) {
    localEndpoints.set(new URL(config.DATABASE_URL).host, config.NEON_HTTP_ENDPOINT);
    neonConfig.fetchEndpoint = ((host, port, options) =>
      localEndpoints.get(port ? `${host}:${port}` : host) ?? neonEndpoint(host, port, options)) satisfies EndpointFn;
  }
  return drizzle({ client: neon(config.DATABASE_URL), schema });
}
