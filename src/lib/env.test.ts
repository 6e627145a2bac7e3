import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Bindings, configFields, loadConfig, PUBLISHED_SECRET_VALUES, SECRET_VARIABLES } from "./env";

const minimal = {
  PUBLIC_BASE_URL: "https://api.example.com",
  DATABASE_URL: "postgresql://user:pw@ep-x.neon.tech/db",
  UPSTASH_REDIS_REST_URL: "https://eu1.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "token",
} as unknown as Bindings;

describe("loadConfig", () => {
  it("parses the test Worker's bindings", () => {
    const loaded = loadConfig(env);
    expect(loaded.ok).toBe(true);
  });

  it("applies defaults and splits comma lists", () => {
    const loaded = loadConfig({
      ...minimal,
      CORS_ORIGINS: " https://a.example , https://b.example,",
      AI_PROVIDER_STRATEGY_FALLBACKS: "claude-sonnet, gemini-flash",
      AI_TOTAL_TIMEOUT_MS: "45000",
    } as Bindings);
    if (!loaded.ok) throw new Error(loaded.invalidVariables.join());
    expect(loaded.config.ENVIRONMENT).toBe("development");
    expect(loaded.config.CORS_ORIGINS).toEqual(["https://a.example", "https://b.example"]);
    expect(loaded.config.AI_PROVIDER_STRATEGY_FALLBACKS).toEqual(["claude-sonnet", "gemini-flash"]);
    expect(loaded.config.AI_TOTAL_TIMEOUT_MS).toBe(45_000);
    expect(loaded.config.QSTASH_URL).toBe("https://qstash.upstash.io");
  });

  it("names every invalid variable, once, and treats empty strings as unset", () => {
    const loaded = loadConfig({
      ...minimal,
      DATABASE_URL: "mysql://nope",
      UPSTASH_REDIS_REST_TOKEN: "   ",
      AI_PROVIDER_STRATEGY_FALLBACKS: "gpt-5, claude-sonnet",
      LOG_LEVEL: "loud",
    } as Bindings);
    expect(loaded).toEqual({
      ok: false,
      invalidVariables: ["AI_PROVIDER_STRATEGY_FALLBACKS", "DATABASE_URL", "LOG_LEVEL", "UPSTASH_REDIS_REST_TOKEN"],
    });
  });

  it("refuses production with a secret published in this repository, or a short upload signing key", () => {
    const production = { ...minimal, ENVIRONMENT: "production", UPLOAD_SIGNING_SECRET: "x".repeat(32) } as Bindings;
    expect(loadConfig(production)).toMatchObject({ ok: true });
    expect(loadConfig({ ...production, UPSTASH_REDIS_REST_TOKEN: "local-redis-token", QSTASH_TOKEN: "local-anything" } as Bindings)).toEqual({
      ok: false,
      invalidVariables: ["QSTASH_TOKEN", "UPSTASH_REDIS_REST_TOKEN"],
    });
    expect(loadConfig({ ...production, DATABASE_URL: "postgresql://postgres:postgres@127.0.0.1:5433/postgres" } as Bindings)).toEqual({
      ok: false,
      invalidVariables: ["DATABASE_URL"],
    });
    for (const short of [undefined, "x".repeat(31), "é".repeat(15)]) {
      expect(loadConfig({ ...production, UPLOAD_SIGNING_SECRET: short } as Bindings)).toEqual({ ok: false, invalidVariables: ["UPLOAD_SIGNING_SECRET"] });
    }
    // Development keeps the local stack's throwaway values.
    expect(loadConfig({ ...minimal, UPSTASH_REDIS_REST_TOKEN: "local-redis-token" } as Bindings)).toMatchObject({ ok: true });
  });

  it("parses an env object once and reuses the answer", () => {
    const bindings = { ...minimal } as Bindings;
    expect(loadConfig(bindings)).toBe(loadConfig(bindings));
  });
});

describe(".dev.vars.example", () => {
  it("documents exactly the variables the config schema reads, each with a comment", async () => {
    const { default: example } = await import("../../.dev.vars.example?raw");
    const lines = (example as string).split("\n");
    const documented = lines.flatMap((line, i) => {
      const match = /^([A-Z][A-Z0-9_]*)=/.exec(line);
      if (!match) return [];
      expect(lines[i - 1]?.startsWith("#"), `${match[1]} needs a comment line above it`).toBe(true);
      return [match[1]];
    });
    expect(documented.sort()).toEqual(Object.keys(configFields.shape).sort());
  });

  it("publishes no secret value production would accept", async () => {
    const { default: example } = await import("../../.dev.vars.example?raw");
    const values = (example as string).split("\n").flatMap((line) => {
      const match = /^([A-Z][A-Z0-9_]*)=(.+)$/.exec(line);
      return match && (SECRET_VARIABLES as readonly string[]).includes(match[1]!) ? [match[2]!] : [];
    });
    expect(values.length).toBeGreaterThan(3);
    expect(values.filter((value) => !PUBLISHED_SECRET_VALUES.has(value))).toEqual([]);
  });
});
