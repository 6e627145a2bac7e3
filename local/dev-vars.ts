import { existsSync, readFileSync } from "node:fs";
import { LOCAL_AUTHORIZED_PARTY, LOCAL_CLERK_ISSUER, LOCAL_KEY_ID } from "./clerk/token.ts";

/** The local stack's fixed Svix-style webhook secret (base64 after `whsec_`), for signing test events by hand. */
export const LOCAL_CLERK_WEBHOOK_SECRET = `whsec_${Buffer.from("charisma-local-clerk-webhooks!!").toString("base64")}`;

export type LocalQStash = { url: string; token: string; currentSigningKey: string; nextSigningKey: string };

/** The local QStash's fixed credentials on the dev stack (throwaway; tests use random ones). */
export const LOCAL_QSTASH_CREDENTIALS = {
  token: "local-qstash-token",
  currentSigningKey: "local-current-signing-key",
  nextSigningKey: "local-next-signing-key",
} as const;

/**
 * The Worker's variables on the local stack. Every value points at a local stand-in or is a
 * throwaway local credential: none of them opens anything outside this machine.
 */
export function localWorkerVars(options: {
  environment: "development" | "test";
  publicBaseUrl: string;
  databaseUrl: string;
  neonHttpEndpoint: string;
  redisRestUrl: string;
  redisRestToken: string;
  clerkJwtKey: string;
  clerkWebhookSecret: string;
  /** Base URLs of the local AI upstream, for every vendor that has no real key. */
  aiBaseUrls: { openai: string; anthropic: string; gemini: string };
  qstash: LocalQStash;
  /** The local Expo push stand-in's base URL. */
  expoPushUrl: string;
}): Record<string, string> {
  return {
    ENVIRONMENT: options.environment,
    APP_VERSION: "local",
    LOG_LEVEL: options.environment === "test" ? "warn" : "info",
    PUBLIC_BASE_URL: options.publicBaseUrl,
    CORS_ORIGINS: "http://localhost:8081,http://localhost:19006",
    DATABASE_URL: options.databaseUrl,
    NEON_HTTP_ENDPOINT: options.neonHttpEndpoint,
    UPSTASH_REDIS_REST_URL: options.redisRestUrl,
    UPSTASH_REDIS_REST_TOKEN: options.redisRestToken,
    QSTASH_URL: options.qstash.url,
    QSTASH_TOKEN: options.qstash.token,
    QSTASH_CURRENT_SIGNING_KEY: options.qstash.currentSigningKey,
    QSTASH_NEXT_SIGNING_KEY: options.qstash.nextSigningKey,
    CLERK_JWT_KEY: options.clerkJwtKey,
    CLERK_AUTHORIZED_PARTIES: LOCAL_AUTHORIZED_PARTY,
    CLERK_ISSUER: LOCAL_CLERK_ISSUER,
    CLERK_JWT_KEY_ID: LOCAL_KEY_ID,
    CLERK_WEBHOOK_SECRET: options.clerkWebhookSecret,
    UPLOAD_SIGNING_SECRET: "local-upload-signing-secret",
    OPENAI_API_KEY: "local-openai-key",
    OPENAI_BASE_URL: options.aiBaseUrls.openai,
    ANTHROPIC_API_KEY: "local-anthropic-key",
    ANTHROPIC_BASE_URL: options.aiBaseUrls.anthropic,
    GEMINI_API_KEY: "local-gemini-key",
    GEMINI_BASE_URL: options.aiBaseUrls.gemini,
    EXPO_PUSH_URL: options.expoPushUrl,
  };
}

/** Reads a dotenv-style file (`KEY=value`, `#` comments, optional quotes); missing file → {}. */
export function readDotenv(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const raw of readFileSync(path, "utf8").split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'"))) {
      value = value.slice(1, -1).replace(/\\n/g, "\n");
    }
    out[key] = value;
  }
  return out;
}
