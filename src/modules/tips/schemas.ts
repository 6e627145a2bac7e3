import { z } from "@hono/zod-openapi";

export const tipSchema = z
  .object({
    id: z.string(),
    text: z.string(),
    phase: z.number().int().min(1).max(4).nullable().openapi({ description: "The conversation phase (1–4) it is about; null for a general tip" }),
    language: z.string().openapi({
      description: "The language of `text` (primary BCP-47 tag): the user's, else their latest conversation's, else en",
      example: "es",
    }),
  })
  .openapi("Tip");

export const todaysTipSchema = z
  .object({
    localDate: z.string().openapi({ description: "The caller's calendar date (YYYY-MM-DD) in their time zone", example: "2026-03-14" }),
    tip: tipSchema.nullable().openapi({ description: "Null when no active tip is left to give (none loaded, or every one given in the last 30 days)" }),
  })
  .openapi("TodaysTip");
