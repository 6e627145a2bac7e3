import { z } from "zod";
import { modelIds } from "../ai/models";

/**
 * What the Workers runtime hands the Worker: resource bindings plus string vars/secrets.
 * Vars are declared loosely here; `configSchema` is what turns them into typed config.
 */
export type Bindings = {
  IMAGES: R2Bucket;
  /** Every room's Durable Object; realtime/rooms.ts gives it its type. */
  SESSION_ROOM: DurableObjectNamespace<Rpc.DurableObjectBranded>;
  /** Static assets (Swagger UI's files); the platform serves them before the Worker runs. */
  ASSETS: Fetcher;
} & Partial<Record<ConfigKey, string>>;

const commaList = z
  .string()
  .default("")
  .transform((value) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  );
const optionalSecret = z.string().min(1).optional();
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const usd = (fallback: number) => z.coerce.number().nonnegative().default(fallback);
const aiModel = z.enum(modelIds);

/** The variables that hold secrets: in production none may hold a value published in this repository. */
export const SECRET_VARIABLES = [
  "DATABASE_URL",
  "UPSTASH_REDIS_REST_TOKEN",
  "QSTASH_TOKEN",
  "QSTASH_CURRENT_SIGNING_KEY",
  "QSTASH_NEXT_SIGNING_KEY",
  "CLERK_SECRET_KEY",
  "CLERK_WEBHOOK_SECRET",
  "UPLOAD_SIGNING_SECRET",
  "OPENAI_API_KEY",
  "ANTHROPIC_API_KEY",
  "GEMINI_API_KEY",
  "EXPO_ACCESS_TOKEN",
] as const;

/**
 * Secret values this repository publishes: `.dev.vars.example` and the local stack's throwaway
 * credentials (all of which start `local-`). A test keeps this list equal to the example file.
 */
export const PUBLISHED_SECRET_VALUES: ReadonlySet<string> = new Set([
  "postgresql://postgres:postgres@127.0.0.1:5433/postgres",
  "local-redis-token",
  "local-qstash-token",
  "local-current-signing-key",
  "local-next-signing-key",
  "whsec_Y2hhcmlzbWEtbG9jYWwtY2xlcmstd2ViaG9va3MhIQ==",
]);

const isPublishedSecret = (value: string) => PUBLISHED_SECRET_VALUES.has(value) || value.startsWith("local-");

/** HMAC keys shorter than this are guessable offline from one signed URL. */
const MIN_SIGNING_SECRET_BYTES = 32;

/**
 * Production refuses to start (every request answers CONFIG_INVALID, the log names the
 * variables) with a secret anyone can read in this repository, or a short upload signing key.
 */
function refuseUnsafeProductionSecrets(config: { ENVIRONMENT: string } & Partial<Record<(typeof SECRET_VARIABLES)[number], string>>, ctx: z.RefinementCtx) {
  if (config.ENVIRONMENT !== "production") return;
  for (const name of SECRET_VARIABLES) {
    const value = config[name];
    if (value !== undefined && isPublishedSecret(value)) ctx.addIssue({ code: "custom", path: [name], message: "a published example value" });
  }
  if (new TextEncoder().encode(config.UPLOAD_SIGNING_SECRET ?? "").byteLength < MIN_SIGNING_SECRET_BYTES) {
    ctx.addIssue({ code: "custom", path: ["UPLOAD_SIGNING_SECRET"], message: `at least ${MIN_SIGNING_SECRET_BYTES} bytes` });
  }
}

/**
 * Every variable the Worker reads, field by field (scripts pick the few they need from it);
 * `configSchema` adds the checks across fields. `.dev.vars.example` documents each.
 */
export const configFields = z.object({
  ENVIRONMENT: z.enum(["development", "test", "staging", "production"]).default("development"),
  APP_VERSION: z.string().min(1).default("dev"),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  PUBLIC_BASE_URL: z.url(),
  CORS_ORIGINS: commaList,

  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }),
  // Local stand-in only: where the Neon HTTP driver sends its queries. Unset in production.
  NEON_HTTP_ENDPOINT: z.url().optional(),

  UPSTASH_REDIS_REST_URL: z.url(),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1),

  QSTASH_URL: z.url().default("https://qstash.upstash.io"),
  QSTASH_TOKEN: optionalSecret,
  QSTASH_CURRENT_SIGNING_KEY: optionalSecret,
  QSTASH_NEXT_SIGNING_KEY: optionalSecret,
  // Attempts QStash makes after the first failed delivery of a job, before its failure callback.
  JOB_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  JOB_LEASE_SECONDS: z.coerce.number().int().min(1).max(600).default(30),

  CLERK_SECRET_KEY: optionalSecret,
  CLERK_JWT_KEY: optionalSecret,
  CLERK_WEBHOOK_SECRET: optionalSecret,
  CLERK_AUTHORIZED_PARTIES: commaList,
  // Checked against a session token's `iss` and header `kid` when set: only the Clerk instance's
  // own tokens pass, even if another party's were signed with a key the Worker trusts.
  CLERK_ISSUER: commaList,
  CLERK_JWT_KEY_ID: z.string().min(1).optional(),

  UPLOAD_SIGNING_SECRET: optionalSecret,
  // Signed upload URLs live at most 5 minutes (SPEC §4).
  UPLOAD_URL_TTL_SECONDS: z.coerce.number().int().min(10).max(300).default(300),
  // Upload quota per user (see uploads/quota.ts) and how long a deleted session's images stay.
  UPLOAD_MAX_PENDING: positiveInt(30),
  UPLOAD_MAX_BYTES_PER_DAY: positiveInt(200 * 1024 * 1024),
  DELETED_SESSION_RETENTION_HOURS: z.coerce.number().int().min(0).max(24 * 365).default(24),

  // WebSocket rooms: time for the first `authenticate` frame, and frames per second per socket.
  WS_AUTH_TIMEOUT_MS: positiveInt(10_000),
  WS_MAX_FRAMES_PER_SECOND: positiveInt(20),
  // Open sockets one user may hold across every room at once.
  WS_MAX_SOCKETS_PER_USER: positiveInt(20),
  // A room with no open socket and no event newer than this deletes its storage.
  ROOM_RETENTION_HOURS: positiveInt(24),

  OPENAI_API_KEY: optionalSecret,
  ANTHROPIC_API_KEY: optionalSecret,
  GEMINI_API_KEY: optionalSecret,
  OPENAI_BASE_URL: z.url().optional(),
  ANTHROPIC_BASE_URL: z.url().optional(),
  GEMINI_BASE_URL: z.url().optional(),
  AI_PROVIDER_STRATEGY_PRIMARY: aiModel.default("gpt-4o"),
  AI_PROVIDER_STRATEGY_FALLBACKS: commaList.pipe(z.array(aiModel)).default(["claude-sonnet"]),
  AI_FIRST_TOKEN_TIMEOUT_MS: positiveInt(10_000),
  AI_TOTAL_TIMEOUT_MS: positiveInt(60_000),
  AI_OCR_TIMEOUT_MS: positiveInt(30_000),
  AI_OCR_MODEL: aiModel.default("gemini-flash"),
  AI_ANALYSIS_MODEL: aiModel.default("gpt-4o-mini"),
  AI_DAILY_BUDGET_USER_USD: usd(0.5),
  AI_DAILY_BUDGET_TOTAL_USD: usd(50),

  RATE_LIMIT_USER: positiveInt(120),
  RATE_LIMIT_IP: positiveInt(60),
  RATE_LIMIT_AI: positiveInt(10),
  // WebSocket upgrades and socket tickets per window per client IP, counted before anything else.
  RATE_LIMIT_WS_UPGRADE: positiveInt(60),
  RATE_LIMIT_WINDOW_SECONDS: positiveInt(60),

  EXPO_ACCESS_TOKEN: optionalSecret,
  // Expo's push API; locally the Expo stand-in (local/expo/server.ts).
  EXPO_PUSH_URL: z.url().default("https://exp.host/--/api/v2/push"),
  ACCOUNT_PURGE_AFTER_DAYS: positiveInt(30),
});

/** One schema for every variable the Worker reads, with production's refusals. */
export const configSchema = configFields.superRefine(refuseUnsafeProductionSecrets);

export type AppConfig = z.infer<typeof configSchema>;
export type ConfigKey = keyof z.input<typeof configSchema>;

export type ConfigResult = { ok: true; config: AppConfig } | { ok: false; invalidVariables: string[] };

// Workers reuse one env object per isolate: parse it once and keep the answer beside it.
const parsed = new WeakMap<object, ConfigResult>();

export function loadConfig(env: Bindings): ConfigResult {
  const cached = parsed.get(env);
  if (cached) return cached;
  const result = configSchema.safeParse(withoutEmptyStrings(env));
  const answer: ConfigResult = result.success
    ? { ok: true, config: result.data }
    : {
        ok: false,
        // Names only: values may be secrets and must never reach a response or a log.
        invalidVariables: [...new Set(result.error.issues.map((issue) => String(issue.path[0])))].sort(),
      };
  parsed.set(env, answer);
  return answer;
}

/** An empty string in `.dev.vars` or the dashboard means "not set", not "set to nothing". */
function withoutEmptyStrings(env: Bindings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(env)) {
    if (typeof value === "string" && value.trim() === "") continue;
    out[key] = value;
  }
  return out;
}
