import { z } from "@hono/zod-openapi";
import { chatAnalysisSchema } from "../../realtime/frames";
import { chatPlatformEnum, generationStatusEnum, messageSenderEnum, messageSourceEnum, ocrStatusEnum, sessionStatusEnum, suggestionFeedbackEnum } from "../../db/schema";
import { instantSchema } from "../../lib/input";
import { ROOM_ID_PATTERN } from "../../realtime/protocol";

export const MAX_MESSAGES = 200;
export const MAX_IMAGES = 10;

const sender = z.enum(messageSenderEnum.enumValues);
const messageText = z.string().trim().min(1).max(4000);

export const messageInputSchema = z
  .object({ sender, text: messageText, sentAt: instantSchema.optional() })
  .strict()
  .openapi("MessageInput");

const sessionFields = {
  title: z.string().trim().min(1).max(120).optional(),
  matchName: z.string().trim().min(1).max(80).optional(),
  platform: z.enum(chatPlatformEnum.enumValues).optional(),
};

export const createSessionSchema = z
  .discriminatedUnion("type", [
    z
      .object({
        type: z.literal("screenshot"),
        imageKeys: z
          .array(z.string().min(1).max(200))
          .min(1)
          .max(MAX_IMAGES)
          .refine((keys) => new Set(keys).size === keys.length, "Each key may appear once"),
        ...sessionFields,
      })
      .strict(),
    z.object({ type: z.literal("text"), messages: z.array(messageInputSchema).min(1).max(MAX_MESSAGES), ...sessionFields }).strict(),
  ])
  .openapi("CreateSession");

export const sessionIdParamsSchema = z.object({
  id: z.string().regex(ROOM_ID_PATTERN, "Not a session id").openapi({ param: { name: "id", in: "path" } }),
});

export const messageParamsSchema = sessionIdParamsSchema.extend({
  messageId: z.string().regex(ROOM_ID_PATTERN, "Not a message id").openapi({ param: { name: "messageId", in: "path" } }),
});

export const listSessionsQuerySchema = z.object({
  cursor: z.string().max(200).optional().openapi({ param: { name: "cursor", in: "query" } }),
  limit: z.coerce.number().int().min(1).max(50).default(20).openapi({ param: { name: "limit", in: "query" } }),
});

// A conversation holds at most MAX_MESSAGES: a position past its end means the end.
const position = z.number().int().min(0).max(MAX_MESSAGES);

export const addMessageSchema = messageInputSchema
  .extend({ position: position.optional().openapi({ description: "Where to insert; the end when omitted" }) })
  .strict()
  .openapi("AddMessage");

export const updateMessageSchema = z
  .object({ sender: sender.optional(), text: messageText.optional(), sentAt: instantSchema.nullable().optional(), position: position.optional() })
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, "Change at least one field")
  .openapi("UpdateMessage");

export const confirmOcrSchema = z
  .object({ messages: z.array(messageInputSchema).min(1).max(MAX_MESSAGES).optional().openapi({ description: "Corrected conversation; replaces the OCR result" }) })
  .strict()
  .openapi("ConfirmOcr");

export const messageSchema = z
  .object({
    id: z.string(),
    sender,
    text: z.string(),
    position: z.number().int(),
    source: z.enum(messageSourceEnum.enumValues),
    ocrConfidence: z.number().nullable(),
    sentAt: z.string().nullable(),
  })
  .openapi("Message");

export const sessionSummarySchema = z
  .object({
    id: z.string(),
    type: z.enum(["screenshot", "text"]),
    status: z.enum(sessionStatusEnum.enumValues),
    title: z.string().nullable(),
    matchName: z.string().nullable(),
    platform: z.enum(chatPlatformEnum.enumValues).nullable(),
    phase: z.number().int().nullable(),
    phaseConfidence: z.number().nullable(),
    interest: z.number().int().nullable().openapi({ description: "The chat analysis's interest (0–100); null until analysed" }),
    error: z.object({ code: z.string(), message: z.string().nullable() }).nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("SessionSummary");

export const sessionDetailSchema = sessionSummarySchema
  .extend({
    messages: z.array(messageSchema),
    images: z.array(
      z.object({
        key: z.string(),
        position: z.number().int(),
        contentType: z.string(),
        sizeBytes: z.number().int(),
        ocrStatus: z.enum(ocrStatusEnum.enumValues),
        available: z.boolean().openapi({ description: "False once the screenshot was deleted from storage (the user's `screenshotRetention`); the messages stay" }),
        deletedAt: z.string().nullable().openapi({ description: "When it was deleted from storage" }),
      }),
    ),
    analysis: chatAnalysisSchema.nullable().openapi({
      description: "The chat analysis of the latest generation; null until one ran, and for a conversation of one message",
    }),
    latestGeneration: z
      .object({
        id: z.string(),
        status: z.enum(generationStatusEnum.enumValues),
        tone: z.string().nullable(),
        language: z.string().nullable(),
        count: z.number().int(),
        errorCode: z.string().nullable(),
        createdAt: z.string(),
        suggestions: z.array(z.object({ id: z.string(), rank: z.number().int(), tone: z.string().nullable(), text: z.string(), feedback: z.enum(suggestionFeedbackEnum.enumValues).nullable() })),
      })
      .nullable(),
    wsUrl: z.string(),
  })
  .openapi("Session");
