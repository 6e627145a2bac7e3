import OpenAI from "openai";
import { sha256Hex } from "../lib/hash";
import type { Logger } from "../lib/logger";
import { costUsd, embeddingModel } from "./models";
import { type AiCallRecord, classifyError } from "./strategy";
import { estimateTextTokens } from "./usage";

const DIMENSIONS = 1536;
const CACHE_TTL_SECONDS = 30 * 86_400;

export interface EmbeddingCache {
  get<T>(key: string): Promise<T | null>;
  set(key: string, value: unknown, options: { ex: number }): Promise<unknown>;
}

/** Whose budget an embedding is charged to (null: the service's own, e.g. loading the knowledge base). */
export type EmbedOptions = { userId?: string | null };

/**
 * `text-embedding-3-small` through the OpenAI SDK. Query embeddings are cached by text hash
 * (Redis in the Worker), so the same conversation never pays twice. Each upstream call is
 * checked against the budget first and written to `ai_calls`; a cached answer costs nothing.
 */
export function createEmbedder(options: {
  apiKey: string;
  baseURL?: string;
  cache?: EmbeddingCache;
  logger: Logger;
  record?(call: AiCallRecord): Promise<void>;
  assertWithinBudget?(userId: string | null): Promise<void>;
}) {
  const client = new OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 2 });
  const embedMany = async (texts: string[], { userId = null }: EmbedOptions = {}): Promise<number[][]> => {
    if (texts.length === 0) return [];
    await options.assertWithinBudget?.(userId);
    const started = Date.now();
    const call = { userId, kind: "embedding", provider: embeddingModel.provider, model: embeddingModel.apiModel, outputTokens: 0, firstTokenMs: null, fallbackFrom: null } as const;
    let response: OpenAI.CreateEmbeddingResponse;
    try {
      response = await client.embeddings.create({ model: embeddingModel.apiModel, input: texts, dimensions: DIMENSIONS });
    } catch (error) {
      // A refused or failed embedding request is not billed.
      const { code } = classifyError(error, new AbortController().signal);
      await options.record?.({ ...call, inputTokens: 0, costUsd: 0, usageEstimated: false, latencyMs: Date.now() - started, status: "failed", errorCode: code });
      throw error;
    }
    const reported = response.usage?.prompt_tokens;
    const inputTokens = reported ?? texts.reduce((sum, text) => sum + estimateTextTokens(text), 0);
    await options.record?.({
      ...call,
      inputTokens,
      costUsd: costUsd(embeddingModel, { inputTokens, outputTokens: 0 }),
      usageEstimated: reported === undefined,
      latencyMs: Date.now() - started,
      status: "succeeded",
      errorCode: null,
    });
    return response.data.sort((a, b) => a.index - b.index).map((item) => item.embedding);
  };
  return {
    embedMany,
    async embedQuery(text: string, embedOptions: EmbedOptions = {}): Promise<number[]> {
      // Per user: a conversation's text is theirs, and the account purge finds keys by user id.
      const key = `emb:${embeddingModel.apiModel}:${embedOptions.userId ?? "shared"}:${await sha256Hex(text)}`;
      // A cache that is down costs an embedding, never the request.
      const cached = await options.cache?.get<number[]>(key).catch((error: unknown) => {
        options.logger.warn("embedding cache read failed", { error });
        return null;
      });
      if (cached) return cached;
      const [vector] = await embedMany([text], embedOptions);
      await options.cache?.set(key, vector, { ex: CACHE_TTL_SECONDS }).catch((error: unknown) => options.logger.warn("embedding cache write failed", { error }));
      return vector!;
    },
  };
}

export type Embedder = ReturnType<typeof createEmbedder>;
