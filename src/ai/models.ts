import type { ModelId, ProviderName } from "./types";

/**
 * The logical models the strategy chooses between, the vendor model each maps to, and its
 * price in USD per 1M tokens (input / output). The prices were set on PRICES_AS_OF from the
 * vendors' list prices for these model families; check them against the vendors' current price
 * pages before relying on the cost figures, and bump the date when you do.
 */
export const PRICES_AS_OF = "2026-11-23";

export const models: Record<ModelId, { provider: ProviderName; apiModel: string; inputPerM: number; outputPerM: number }> = {
  "gpt-4o": { provider: "openai", apiModel: "gpt-4o", inputPerM: 2.5, outputPerM: 10 },
  "claude-sonnet": { provider: "anthropic", apiModel: "claude-sonnet-5-5", inputPerM: 3, outputPerM: 15 },
  "gemini-flash": { provider: "gemini", apiModel: "gemini-2.5-flash", inputPerM: 0.3, outputPerM: 2.5 },
};

export const embeddingModel = { provider: "openai" as const, apiModel: "text-embedding-3-small", inputPerM: 0.02 };

/** Cost in USD, rounded to the micro-dollar the `ai_calls.cost_usd` column keeps. */
export function costUsd(model: ModelId, usage: { inputTokens: number; outputTokens: number }): number {
  const price = models[model];
  const raw = (usage.inputTokens * price.inputPerM + usage.outputTokens * price.outputPerM) / 1_000_000;
  return Math.round(raw * 1e6) / 1e6;
}
