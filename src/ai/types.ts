import type { ModelId, ProviderName } from "./models";

// The model list (models.ts) is where these are declared; the rest of the engine takes them from here.
export type { ModelId, ProviderName };
export type AiCallKind = "ocr" | "phase" | "embedding" | "suggestions" | "opener" | "tip";

export type ImageInput = { mimeType: string; base64: string };
export type ChatMessage = { role: "user" | "assistant"; content: string; images?: ImageInput[] };

/** One generation request, the same for every vendor. */
export interface GenerateRequest {
  /** The instructions. Conversation data never goes in here, only in `messages`. */
  system: string;
  messages: ChatMessage[];
  maxTokens: number;
  temperature?: number;
  /** Ask for JSON that fits this JSON Schema (structured output). */
  jsonSchema?: OutputJsonSchema;
}

declare const derivedFromZod: unique symbol;
/**
 * A structured-output JSON Schema as the vendors get it. Only `outputJsonSchema` (prompts/data.ts)
 * makes one, from the zod schema that then validates the answer: a hand-written copy, which
 * could say something the validation does not, does not compile.
 */
export type OutputJsonSchema = { name: string; schema: Record<string, unknown> } & { readonly [derivedFromZod]: true };

export type Usage = { inputTokens: number; outputTokens: number };
/** Usage may come in parts, and early: Anthropic reports the input tokens when the stream starts. */
export type ProviderEvent = { type: "delta"; text: string } | { type: "usage"; usage: Partial<Usage> };

/** A vendor behind its official SDK: everything is a stream of deltas plus usage as it is known. */
export interface ProviderAdapter {
  provider: ProviderName;
  stream(model: string, request: GenerateRequest, signal: AbortSignal): AsyncIterable<ProviderEvent>;
}
