import OpenAI from "openai";
import { sha256Hex } from "../lib/hash";
import { embeddingModel } from "./models";

const DIMENSIONS = 1536;
const CACHE_TTL_SECONDS = 30 * 86_400;

export interface EmbeddingCache {
  get<T>(key: string): Promise<T | null>;
  set(key: string, value: unknown, options: { ex: number }): Promise<unknown>;
}

/**
 * `text-embedding-3-small` through the OpenAI SDK. Query embeddings are cached by text hash
 * (Redis in the Worker), so the same conversation never pays twice.
 */
export function createEmbedder(options: { apiKey: string; baseURL?: string; cache?: EmbeddingCache }) {
  const client = new OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 2 });
  const embedMany = async (texts: string[]): Promise<number[][]> => {
    if (texts.length === 0) return [];
    const response = await client.embeddings.create({ model: embeddingModel.apiModel, input: texts, dimensions: DIMENSIONS });
    return response.data.sort((a, b) => a.index - b.index).map((item) => item.embedding);
  };
  return {
    embedMany,
    async embedQuery(text: string): Promise<number[]> {
      const key = `emb:${embeddingModel.apiModel}:${await sha256Hex(text)}`;
      const cached = await options.cache?.get<number[]>(key).catch(() => null);
      if (cached) return cached;
      const [vector] = await embedMany([text]);
      await options.cache?.set(key, vector, { ex: CACHE_TTL_SECONDS }).catch(() => undefined);
      return vector!;
    },
  };
}

export type Embedder = ReturnType<typeof createEmbedder>;
