import { z } from "zod";
import { chatPlatformEnum } from "../../db/schema";
import type { GenerateRequest, ImageInput } from "../types";
import { DATA_RULE, outputJsonSchema } from "./data";

export const OCR_PROMPT_VERSION = "ocr@1";

/** What the vision model answers for one screenshot; the platforms are the ones a session stores. */
export const ocrOutputSchema = z.object({
  matchName: z.string().trim().max(80).nullable(),
  platform: z.enum(chatPlatformEnum.enumValues),
  messages: z.array(z.object({ sender: z.enum(["user", "match"]), text: z.string(), confidence: z.number().min(0).max(1) })),
  confidence: z.number().min(0).max(1),
});

export type OcrOutput = z.infer<typeof ocrOutputSchema>;

export function buildOcrRequest(images: ImageInput[]): GenerateRequest {
  return {
    system: [
      "Transcribe the chat in these screenshots, oldest message first.",
      "Messages on the right are from the user (sender \"user\"), on the left from the match (sender \"match\").",
      "Report the match's name if shown, the app, and your confidence. Answer only with JSON.",
      "If the screenshots show no chat conversation, answer with an empty messages list.",
      DATA_RULE.replace("tagged data block", "screenshots"),
    ].join("\n"),
    messages: [{ role: "user", content: "Screenshots of one conversation, in order:", images }],
    maxTokens: 4_000,
    temperature: 0,
    jsonSchema: outputJsonSchema("ocr", ocrOutputSchema),
  };
}
