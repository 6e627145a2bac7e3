import type { Database } from "../lib/db";
import type { AppConfig } from "../lib/env";
import { createLogger } from "../lib/logger";
import { createRedis } from "../lib/redis";
import { createBudget } from "./budget";
import { createAiCallRecorder } from "./calls";
import { createEmbedder } from "./embeddings";
import { retrieveChunks } from "./knowledge/retrieve";
import { createAdapters } from "./providers";
import { complete, completeStructured, type EngineDeps, type GenerateOptions, generate } from "./strategy";
import type { GenerateRequest, ModelId } from "./types";

/**
 * The AI engine as features use it, wired from config: model order from
 * AI_PROVIDER_STRATEGY_*, timeouts, the ai_calls recorder, budgets, embeddings and retrieval.
 */
export function createAiEngine(config: AppConfig, db: Database) {
  const redis = createRedis(config, { retries: 1 });
  // The engine outlives requests (one per isolate), so it logs with its own logger.
  const logger = createLogger({ level: config.LOG_LEVEL, base: { component: "ai" } });
  const budget = createBudget({
    redis,
    db,
    logger,
    limits: { userDailyUsd: config.AI_DAILY_BUDGET_USER_USD, totalDailyUsd: config.AI_DAILY_BUDGET_TOTAL_USD },
  });
  const order = [...new Set<ModelId>([config.AI_PROVIDER_STRATEGY_PRIMARY, ...config.AI_PROVIDER_STRATEGY_FALLBACKS])];
  // Every upstream call, of every kind, asks the budget first and lands in ai_calls and its counters.
  const record = createAiCallRecorder(db, budget);
  const assertWithinBudget = (userId: string | null) => budget.assertWithinBudget(userId);
  const deps: EngineDeps = {
    adapters: createAdapters(config),
    order,
    firstTokenTimeoutMs: config.AI_FIRST_TOKEN_TIMEOUT_MS,
    totalTimeoutMs: config.AI_TOTAL_TIMEOUT_MS,
    record,
    assertWithinBudget,
  };
  const embedder = config.OPENAI_API_KEY
    ? createEmbedder({ apiKey: config.OPENAI_API_KEY, baseURL: config.OPENAI_BASE_URL, cache: redis, logger, record, assertWithinBudget })
    : undefined;
  // OCR asks a vision model first (Gemini Flash by default), then the others in the usual order.
  const ocrOrder = [...new Set<ModelId>([config.AI_OCR_MODEL, ...order])];
  // The chat's phase and analysis ask a small model first; an answer that does not fit the
  // schema fails that attempt, and the usual order answers instead.
  const analysisOrder = [...new Set<ModelId>([config.AI_ANALYSIS_MODEL, ...order])];
  return {
    order,
    ocrOrder,
    analysisOrder,
    budget,
    generate: <T = string>(request: GenerateRequest, options: GenerateOptions<T>) => generate(deps, request, options),
    complete: <T = string>(request: GenerateRequest, options: GenerateOptions<T>) => complete(deps, request, options),
    completeStructured: <T>(request: GenerateRequest, schema: Parameters<typeof completeStructured<T>>[2], options: GenerateOptions) =>
      completeStructured<T>(deps, request, schema, options),
    /** Coaching notes nearest to `text`, of the given phase (and phase-less ones); the query's embedding is charged to `userId`. */
    async retrieve(text: string, options: { phase?: number; k?: number; userId?: string | null } = {}) {
      if (!embedder) return [];
      const { userId, ...query } = options;
      return retrieveChunks(db, await embedder.embedQuery(text, { userId }), query);
    },
  };
}

export type AiEngine = ReturnType<typeof createAiEngine>;

const engines = new WeakMap<AppConfig, AiEngine>();

/** The per-isolate engine for a parsed config (SDK clients and the Redis client are reused). */
export function aiEngineFor(config: AppConfig, db: Database): AiEngine {
  let engine = engines.get(config);
  if (!engine) {
    engine = createAiEngine(config, db);
    engines.set(config, engine);
  }
  return engine;
}
