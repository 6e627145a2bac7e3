import OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import type { GenerateRequest, ProviderAdapter } from "../types";

function toMessages(request: GenerateRequest): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [{ role: "system", content: request.system }];
  for (const message of request.messages) {
    if (message.role === "assistant" || !message.images?.length) {
      out.push({ role: message.role, content: message.content });
      continue;
    }
    out.push({
      role: "user",
      content: [
        { type: "text", text: message.content },
        ...message.images.map((image) => ({
          type: "image_url" as const,
          image_url: { url: `data:${image.mimeType};base64,${image.base64}` },
        })),
      ],
    });
  }
  return out;
}

export function createOpenAiAdapter(options: { apiKey: string; baseURL?: string }): ProviderAdapter {
  // Retries belong to the strategy, which also decides when to move to another vendor.
  const client = new OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0 });
  return {
    provider: "openai",
    async *stream(model, request, signal) {
      const stream = await client.chat.completions.create(
        {
          model,
          messages: toMessages(request),
          max_completion_tokens: request.maxTokens,
          temperature: request.temperature,
          stream: true,
          stream_options: { include_usage: true },
          ...(request.jsonSchema
            ? { response_format: { type: "json_schema", json_schema: { name: request.jsonSchema.name, schema: request.jsonSchema.schema } } }
            : {}),
        },
        { signal },
      );
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta.content;
        if (text) yield { type: "delta", text };
        if (chunk.usage) {
          yield { type: "usage", usage: { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens } };
        }
      }
    },
  };
}
