import { z } from "zod";
import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage, outputJsonSchema } from "./data";

export const TIP_TRANSLATION_PROMPT_VERSION = "tip-translation@1";

/** What the model answers: the tip in the language asked for. */
export const tipTranslationOutputSchema = z.strictObject({ text: z.string().trim().min(1).max(400) });

/** One curated tip (content/tips) into the language with this BCP-47 tag, for the app and the push. */
export function buildTipTranslationRequest(text: string, language: string): GenerateRequest {
  return {
    system: [
      `Translate this dating tip: write it in the language with tag ${JSON.stringify(language)}.`,
      "Keep its meaning, its friendly tone and its length; no additions. Answer only with JSON that fits the given schema.",
      DATA_RULE,
    ].join("\n"),
    messages: [dataMessage("tip_data", { text })],
    maxTokens: 300,
    temperature: 0,
    jsonSchema: outputJsonSchema("tip_translation", tipTranslationOutputSchema),
  };
}
