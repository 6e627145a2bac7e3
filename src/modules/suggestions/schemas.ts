import { z } from "@hono/zod-openapi";
import { generationStatusEnum, suggestionFeedbackEnum } from "../../db/schema";
import { ROOM_ID_PATTERN } from "../../realtime/protocol";
import { toneSchema } from "../users/schemas";

/** The tone when neither the request nor the user's preferences name one. */
export const DEFAULT_TONE = "playful";

export const generateSuggestionsSchema = z
  .object({
    tone: toneSchema.optional().openapi({ description: "Defaults to the user's preferred tone, else playful" }),
    count: z.number().int().min(1).max(5).optional().openapi({ description: "Defaults to the user's preference, else 3" }),
    instructions: z.string().trim().min(1).max(500).optional().openapi({ description: "e.g. 'suggest a coffee date'" }),
  })
  .strict()
  .openapi("GenerateSuggestions");

export const generationStartedSchema = z.object({ generationId: z.string(), wsUrl: z.string() }).openapi("GenerationStarted");

export const suggestionSchema = z
  .object({
    id: z.string(),
    rank: z.number().int(),
    tone: z.string().nullable(),
    text: z.string(),
    feedback: z.enum(suggestionFeedbackEnum.enumValues).nullable(),
  })
  .openapi("Suggestion");

export const generationSchema = z
  .object({
    id: z.string(),
    status: z.enum(generationStatusEnum.enumValues),
    tone: z.string().nullable(),
    count: z.number().int(),
    instructions: z.string().nullable(),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    language: z.string().nullable().openapi({ description: "The language the suggestions were written in (BCP-47): the user's, else the conversation's" }),
    errorCode: z.string().nullable(),
    createdAt: z.string(),
    suggestions: z.array(suggestionSchema),
  })
  .openapi("Generation");

export const suggestionParamsSchema = z.object({
  id: z.string().regex(ROOM_ID_PATTERN, "Not a suggestion id").openapi({ param: { name: "id", in: "path" } }),
});

export const feedbackSchema = z
  .object({ feedback: z.enum(suggestionFeedbackEnum.enumValues).nullable() })
  .strict()
  .openapi("SuggestionFeedback");
