import type { AppConfig } from "../../lib/env";
import type { ProviderAdapter, ProviderName } from "../types";
import { createAnthropicAdapter } from "./anthropic";
import { createGeminiAdapter } from "./gemini";
import { createOpenAiAdapter } from "./openai";

/** The adapters whose vendor has a key; a vendor without one is simply not available. */
export function createAdapters(config: AppConfig): Partial<Record<ProviderName, ProviderAdapter>> {
  const adapters: Partial<Record<ProviderName, ProviderAdapter>> = {};
  if (config.OPENAI_API_KEY) adapters.openai = createOpenAiAdapter({ apiKey: config.OPENAI_API_KEY, baseURL: config.OPENAI_BASE_URL });
  if (config.ANTHROPIC_API_KEY) {
    adapters.anthropic = createAnthropicAdapter({ apiKey: config.ANTHROPIC_API_KEY, baseURL: config.ANTHROPIC_BASE_URL });
  }
  if (config.GEMINI_API_KEY) adapters.gemini = createGeminiAdapter({ apiKey: config.GEMINI_API_KEY, baseURL: config.GEMINI_BASE_URL });
  return adapters;
}
