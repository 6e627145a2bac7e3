import { z } from "zod";
import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage, outputJsonSchema } from "./data";

export const SUGGESTIONS_PROMPT_VERSION = "suggestions@2";

export const SUGGESTION_MAX_CHARS = 300;

/**
 * What the model answers: exactly `count` suggestions, text only. The tone is the one asked for
 * and is stored by us, never taken from the model.
 */
export function suggestionsOutputSchema(count: number) {
  return z.strictObject({
    suggestions: z.array(z.strictObject({ text: z.string().trim().min(1).max(SUGGESTION_MAX_CHARS) })).length(count),
  });
}

export type SuggestionsOutput = z.infer<ReturnType<typeof suggestionsOutputSchema>>;

export interface SuggestionsInput {
  messages: Array<{ sender: "user" | "match"; text: string }>;
  phase: number | null;
  tone: string;
  count: number;
  instructions?: string;
  /** The user's preferred language (a tag like "en" or "pt-BR"); else the conversation's. */
  language?: string;
  knowledge: Array<{ title: string; content: string }>;
  /** What the chat analysis saw: the next move it suggests and the signals, passed as data. */
  analysis?: { nextMove: string; signals: { green: string[]; red: string[] } };
}

export function buildSuggestionsRequest(input: SuggestionsInput): GenerateRequest {
  return {
    system: [
      "You are Charisma, a warm, respectful dating coach. Write replies the user could send next in their chat.",
      `Write exactly ${input.count} distinct suggestions in a ${input.tone} tone, each under ${SUGGESTION_MAX_CHARS} characters, ${
        input.language ? `in the language with tag ${JSON.stringify(input.language)}` : "in the language of the conversation"
      }.`,
      "Be specific to what the match said; never manipulative, never pushy, always respectful of boundaries.",
      "Use the coaching notes and the chat analysis (its suggested next move and signals) when they help. Answer only with JSON that fits the given schema.",
      DATA_RULE,
    ].join("\n"),
    messages: [
      dataMessage("conversation_data", {
        conversationPhase: input.phase,
        messages: input.messages,
        userRequest: input.instructions ?? null,
        coachingNotes: input.knowledge,
        chatAnalysis: input.analysis ?? null,
      }),
    ],
    maxTokens: 800,
    temperature: 0.8,
    jsonSchema: outputJsonSchema("suggestions", suggestionsOutputSchema(input.count)),
  };
}
