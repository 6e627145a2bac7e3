import { z } from "zod";
import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage, outputJsonSchema } from "./data";

export const PHASE_PROMPT_VERSION = "phase@2";

/** The match's tone, from a small fixed set so that apps can show it and insights can count it. */
export const MATCH_TONES = ["warm", "playful", "flirty", "dry", "curious", "distant", "enthusiastic", "guarded"] as const;
const signal = z.string().min(1).max(80);

/**
 * What the model answers, in one structured call: the conversation's phase (1–4, see the prompt)
 * with its confidence, and the chat analysis of SPEC §12 (the investment balance is computed in
 * code from the messages, not asked of the model).
 */
export const phaseOutputSchema = z.object({
  phase: z.number().int().min(1).max(4),
  confidence: z.number().min(0).max(1),
  interest: z.number().int().min(0).max(100).describe("How interested the match seems, 0–100"),
  interestReason: z.string().min(1).max(160).describe("One line; quotes at most a few words of the chat"),
  matchTone: z.enum(MATCH_TONES),
  energy: z.enum(["low", "medium", "high"]),
  signals: z.object({ green: z.array(signal).max(3), red: z.array(signal).max(3) }),
  nextMove: z.string().min(1).max(200).describe("One sentence: what the user should do next"),
  language: z
    .string()
    .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/)
    .describe("The BCP-47 tag of the language the conversation is written in"),
});

export type PhaseOutput = z.infer<typeof phaseOutputSchema>;

/**
 * `language`: the user's chosen language for the texts (interestReason, signals, nextMove); without
 * one they are written in the conversation's own language.
 */
export function buildPhaseRequest(messages: Array<{ sender: "user" | "match"; text: string }>, options: { language?: string } = {}): GenerateRequest {
  return {
    system: [
      "Read this dating-app conversation between the user and their match, and answer only with JSON:",
      "- phase: 1 = opening (first messages), 2 = building rapport, 3 = flirting / deepening, 4 = moving to a date; and your confidence from 0 to 1;",
      "- interest: how interested the match seems, 0 to 100, with a one-line reason that quotes no more than a few words of the chat;",
      "- matchTone (one of the listed values) and the match's energy;",
      "- signals: up to three green and up to three red, each a short phrase;",
      "- nextMove: one concrete sentence on what the user could do next;",
      "- language: the BCP-47 tag of the language the conversation is written in.",
      `Write the reason, the signals and the next move ${
        options.language ? `in the language with tag ${JSON.stringify(options.language)}` : "in the language of the conversation"
      }.`,
      DATA_RULE,
    ].join("\n"),
    messages: [dataMessage("conversation_data", { messages })],
    maxTokens: 400,
    temperature: 0,
    jsonSchema: outputJsonSchema("chat_analysis", phaseOutputSchema),
  };
}
