import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage } from "./data";

export const TIP_PROMPT_VERSION = "tip@1";

export function buildTipRequest(input: { phase: number | null; knowledge: Array<{ title: string; content: string }> }): GenerateRequest {
  return {
    system: [
      "Write one short, practical dating tip of the day (at most 200 characters) for a push notification.",
      "Friendly, concrete, inclusive. Plain text, no emojis, no quotes.",
      DATA_RULE,
    ].join("\n"),
    messages: [dataMessage("tip_context", input)],
    maxTokens: 120,
    temperature: 0.9,
  };
}
