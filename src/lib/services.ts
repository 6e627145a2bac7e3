import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app-env";
import { createDatabase, type Database } from "./db";
import { type AppConfig, loadConfig } from "./env";
import { AppError } from "./errors";
import { createRedis } from "./redis";

const databases = new WeakMap<AppConfig, Database>();
const redises = new WeakMap<AppConfig, ReturnType<typeof createRedis>>();

/** The per-isolate database handle for a parsed config. */
export function databaseFor(config: AppConfig): Database {
  let db = databases.get(config);
  if (!db) {
    db = createDatabase(config);
    databases.set(config, db);
  }
  return db;
}

/** The per-isolate Redis client for a parsed config: one retry, so a request waits little on an outage. */
export function redisFor(config: AppConfig): ReturnType<typeof createRedis> {
  let redis = redises.get(config);
  if (!redis) {
    redis = createRedis(config, { retries: 1 });
    redises.set(config, redis);
  }
  return redis;
}

/** Puts the parsed config and the database on the context; a broken config answers 503. */
export function withServices(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const loaded = loadConfig(c.env);
    if (!loaded.ok) {
      c.var.logger.error("invalid configuration", { variables: loaded.invalidVariables });
      throw new AppError("CONFIG_INVALID");
    }
    c.set("config", loaded.config);
    c.set("db", databaseFor(loaded.config));
    await next();
  };
}
