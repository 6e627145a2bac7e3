import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage } from "./data";

export const SUGGESTIONS_PROMPT_VERSION = "suggestions@1";

export const suggestionsSchema = {
  type: "object",
  properties: {
    suggestions: {
      type: "array",
      minItems: 1,
      maxItems: 5,
      items: {
        type: "object",
        properties: { text: { type: "string", maxLength: 300 }, tone: { type: "string", maxLength: 40 } },
        required: ["text", "tone"],
        additionalProperties: false,
      },
    },
  },
  required: ["suggestions"],
  additionalProperties: false,
} as const;

export interface SuggestionsInput {
  messages: Array<{ sender: "user" | "match"; text: string }>;
  phase: number | null;
  tone: string;
  count: number;
  instructions?: string;
  /** The user's preferred language (a tag like "en" or "pt-BR"); else the conversation's. */
  language?: string;
  knowledge: Array<{ title: string; content: string }>;
}

export function buildSuggestionsRequest(input: SuggestionsInput): GenerateRequest {
  return {
    system: [
      "You are Charisma, a warm, respectful dating coach. Write replies the user could send next in their chat.",
      `Write exactly ${input.count} distinct suggestions in a ${input.tone} tone, each under 300 characters, ${
        input.language ? `in the language with tag ${JSON.stringify(input.language)}` : "in the language of the conversation"
      }.`,
      "Be specific to what the match said; never manipulative, never pushy, always respectful of boundaries.",
      "Use the coaching notes when they help. Answer only with JSON that fits the given schema.",
      DATA_RULE,
    ].join("\n"),
    messages: [
      dataMessage("conversation_data", {
        conversationPhase: input.phase,
        messages: input.messages,
        userRequest: input.instructions ?? null,
        coachingNotes: input.knowledge,
      }),
    ],
    maxTokens: 800,
    temperature: 0.8,
    jsonSchema: { name: "suggestions", schema: suggestionsSchema as unknown as Record<string, unknown> },
  };
}
