// The one list of models. It imports nothing, so the Node-side tools (the local AI upstream,
// benches) can load it as it is, next to the Worker.

/** The vendors, each reached through its official SDK. */
export type ProviderName = "openai" | "anthropic" | "gemini";

type Price = { inputPerM: number; outputPerM: number };

/**
 * The logical models the strategy chooses between, the vendor model each maps to, and its
 * price in USD per 1M tokens (input / output). The prices were set on PRICES_AS_OF from the
 * vendors' list prices for these model families; check them against the vendors' current price
 * pages before relying on the cost figures, and bump the date when you do.
 */
export const PRICES_AS_OF = "2026-11-23";

export const models = {
  "gpt-4o": { provider: "openai", apiModel: "gpt-4o", inputPerM: 2.5, outputPerM: 10 },
  // Small and cheap: reading a chat's phase and analysis into a fixed schema needs no more.
  "gpt-4o-mini": { provider: "openai", apiModel: "gpt-4o-mini", inputPerM: 0.15, outputPerM: 0.6 },
  "claude-sonnet": { provider: "anthropic", apiModel: "claude-sonnet-5-5", inputPerM: 3, outputPerM: 15 },
  "gemini-flash": { provider: "gemini", apiModel: "gemini-2.5-flash", inputPerM: 0.3, outputPerM: 2.5 },
} as const satisfies Record<string, { provider: ProviderName; apiModel: string } & Price>;

/** A logical model: what AI_PROVIDER_STRATEGY_*, AI_OCR_MODEL and AI_ANALYSIS_MODEL name. */
export type ModelId = keyof typeof models;

/** Every logical model, in the list's order (a non-empty tuple, as `z.enum` wants). */
export const modelIds = Object.keys(models) as [ModelId, ...ModelId[]];

/** The query and knowledge embedder (SPEC §8); embeddings bill input tokens only. */
export const embeddingModel = { provider: "openai" as const, apiModel: "text-embedding-3-small", inputPerM: 0.02, outputPerM: 0 };

/**
 * Cost in USD, rounded up to the micro-dollar the `ai_calls.cost_usd` column keeps: a short
 * query embedding costs a fraction of one, and a call that cost anything is never free.
 */
export function costUsd(model: ModelId | Price, usage: { inputTokens: number; outputTokens: number }): number {
  const price = typeof model === "string" ? models[model] : model;
  const microDollars = (usage.inputTokens * price.inputPerM + usage.outputTokens * price.outputPerM);
  // Rounded to the pico-dollar first, so float noise (5.000000001) does not round a whole unit up.
  return Math.ceil(Math.round(microDollars * 1e6) / 1e6) / 1e6;
}
