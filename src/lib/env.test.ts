import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Bindings, configSchema, loadConfig } from "./env";

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
    expect(documented.sort()).toEqual(Object.keys(configSchema.shape).sort());
  });
});
