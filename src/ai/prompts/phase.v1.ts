import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage } from "./data";

export const PHASE_PROMPT_VERSION = "phase@1";

export const phaseSchema = {
  type: "object",
  properties: {
    phase: { type: "integer", minimum: 1, maximum: 4 },
    confidence: { type: "number", minimum: 0, maximum: 1 },
  },
  required: ["phase", "confidence"],
  additionalProperties: false,
} as const;

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
    jsonSchema: { name: "phase", schema: phaseSchema as unknown as Record<string, unknown> },
  };
}
