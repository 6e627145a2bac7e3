import { z } from "zod";
import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage, outputJsonSchema } from "./data";

export const PHASE_PROMPT_VERSION = "phase@1";

/** What the model answers: the conversation's phase (1–4, see the prompt) and its confidence. */
export const phaseOutputSchema = z.object({
  phase: z.number().int().min(1).max(4),
  confidence: z.number().min(0).max(1),
});

export type PhaseOutput = z.infer<typeof phaseOutputSchema>;

export function buildPhaseRequest(messages: Array<{ sender: "user" | "match"; text: string }>): GenerateRequest {
  return {
    system: [
      "Classify the phase of this dating-app conversation:",
      "1 = opening (first messages), 2 = building rapport, 3 = flirting / deepening, 4 = moving to a date.",
      "Answer only with JSON: the phase and your confidence from 0 to 1.",
      DATA_RULE,
    ].join("\n"),
    messages: [dataMessage("conversation_data", { messages })],
    maxTokens: 100,
    temperature: 0,
    jsonSchema: outputJsonSchema("phase", phaseOutputSchema),
  };
}
