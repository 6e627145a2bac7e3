import { GoogleGenAI, type Content } from "@google/genai";
import type { GenerateRequest, ProviderAdapter } from "../types";

function toContents(request: GenerateRequest): Content[] {
  return request.messages.map((message) => ({
    role: message.role === "assistant" ? "model" : "user",
    parts: [
      ...(message.images ?? []).map((image) => ({ inlineData: { mimeType: image.mimeType, data: image.base64 } })),
      { text: message.content },
    ],
  }));
}

export function createGeminiAdapter(options: { apiKey: string; baseURL?: string }): ProviderAdapter {
  const client = new GoogleGenAI({
    apiKey: options.apiKey,
    ...(options.baseURL ? { httpOptions: { baseUrl: options.baseURL } } : {}),
  });
  return {
    provider: "gemini",
    async *stream(model, request, signal) {
      const stream = await client.models.generateContentStream({
        model,
        contents: toContents(request),
        config: {
          systemInstruction: request.system,
          maxOutputTokens: request.maxTokens,
          temperature: request.temperature,
          abortSignal: signal,
          ...(request.jsonSchema ? { responseMimeType: "application/json", responseJsonSchema: request.jsonSchema.schema } : {}),
        },
      });
      for await (const chunk of stream) {
        const text = chunk.text;
        if (text) yield { type: "delta", text };
        // Usage may ride on any chunk (running totals) or only the last; each report is the latest.
        const usage = chunk.usageMetadata;
        if (usage) {
          const { promptTokenCount, candidatesTokenCount, thoughtsTokenCount } = usage;
          yield {
            type: "usage",
            usage: {
              ...(promptTokenCount !== undefined ? { inputTokens: promptTokenCount } : {}),
              // Gemini 2.5 thinks before it answers, and bills the thinking as output.
              ...(candidatesTokenCount !== undefined ? { outputTokens: candidatesTokenCount + (thoughtsTokenCount ?? 0) } : {}),
            },
          };
        }
      }
    },
  };
}
