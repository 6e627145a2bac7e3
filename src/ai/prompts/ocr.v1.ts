import type { GenerateRequest, ImageInput } from "../types";
import { DATA_RULE } from "./data";

export const OCR_PROMPT_VERSION = "ocr@1";

export const ocrSchema = {
  type: "object",
  properties: {
    matchName: { type: ["string", "null"] },
    platform: { type: "string", enum: ["tinder", "hinge", "bumble", "imessage", "whatsapp", "instagram", "other"] },
    messages: {
      type: "array",
      items: {
        type: "object",
        properties: {
          sender: { type: "string", enum: ["user", "match"] },
          text: { type: "string" },
          confidence: { type: "number", minimum: 0, maximum: 1 },
        },
        required: ["sender", "text", "confidence"],
        additionalProperties: false,
      },
    },
    confidence: { type: "number", minimum: 0, maximum: 1 },
  },
  required: ["matchName", "platform", "messages", "confidence"],
  additionalProperties: false,
} as const;

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
    jsonSchema: { name: "ocr", schema: ocrSchema as unknown as Record<string, unknown> },
  };
}
