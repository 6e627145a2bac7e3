import type Anthropic from "@anthropic-ai/sdk";
import { BaseAnthropic } from "@anthropic-ai/sdk/client";
import { Messages } from "@anthropic-ai/sdk/resources/messages/messages";
import type { GenerateRequest, ProviderAdapter } from "../types";

/**
 * The SDK's client with only the Messages API, the one resource the Worker calls. The full
 * `Anthropic` class builds every resource (beta, files, skills, organization, …) in its
 * constructor, so bundling it costs about 260 KiB of the Worker's script; its base class plus
 * one resource is the SDK's own way to import less.
 */
class MessagesClient extends BaseAnthropic {
  messages = new Messages(this);
}

function toMessages(request: GenerateRequest): Anthropic.MessageParam[] {
  return request.messages.map((message) => {
    if (message.role === "assistant" || !message.images?.length) return { role: message.role, content: message.content };
    return {
      role: "user",
      content: [
        ...message.images.map((image) => ({
          type: "image" as const,
          source: { type: "base64" as const, media_type: image.mimeType as "image/png", data: image.base64 },
        })),
        { type: "text" as const, text: message.content },
      ],
    };
  });
}

export function createAnthropicAdapter(options: { apiKey: string; baseURL?: string }): ProviderAdapter {
  const client = new MessagesClient({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0 });
  return {
    provider: "anthropic",
    async *stream(model, request, signal) {
      // Structured output through a forced tool: its input is the JSON, streamed as partial JSON.
      const tool = request.jsonSchema
        ? { name: request.jsonSchema.name, input_schema: request.jsonSchema.schema as Anthropic.Tool.InputSchema }
        : undefined;
      const stream = await client.messages.create(
        {
          model,
          system: request.system,
          messages: toMessages(request),
          max_tokens: request.maxTokens,
          stream: true,
          ...(tool ? { tools: [tool], tool_choice: { type: "tool" as const, name: tool.name } } : {}),
        },
        { signal },
      );
      for await (const event of stream) {
        // The input count comes first, so a call stopped mid-stream is still charged its real prompt.
        if (event.type === "message_start") yield { type: "usage", usage: { inputTokens: event.message.usage.input_tokens } };
        else if (event.type === "content_block_delta") {
          if (event.delta.type === "text_delta") yield { type: "delta", text: event.delta.text };
          else if (event.delta.type === "input_json_delta") yield { type: "delta", text: event.delta.partial_json };
        } else if (event.type === "message_delta") {
          yield { type: "usage", usage: { outputTokens: event.usage.output_tokens } };
        }
      }
    },
  };
}
