import { z } from "@hono/zod-openapi";
import { ROOM_ID_PATTERN } from "../../realtime/protocol";
import { languageSchema, toneSchema } from "../users/schemas";

const line = (max: number) => z.string().trim().min(1).max(max);

/** The match's profile as the user saw it (SPEC §4): what the openers may refer to. */
export const openerProfileSchema = z
  .object({
    name: line(80).optional(),
    bio: line(2000).optional(),
    interests: z.array(line(60)).min(1).max(20).optional(),
    prompts: z
      .array(z.object({ question: line(200), answer: line(500) }).strict())
      .min(1)
      .max(10)
      .optional(),
    photoKey: z.string().min(1).max(200).optional().openapi({ description: "A finished upload of the caller's (GET /sessions/upload-url, then PUT)" }),
  })
  .strict()
  .refine((profile) => profile.bio || profile.interests || profile.prompts || profile.photoKey, {
    message: "Give at least one of bio, interests, prompts or photoKey",
  })
  .openapi("OpenerProfile");

export const generateOpenersSchema = z
  .object({
    profile: openerProfileSchema,
    tone: toneSchema.optional().openapi({ description: "Defaults to the user's preferred tone, else playful" }),
    count: z.number().int().min(1).max(5).optional().openapi({ description: "Defaults to the user's preferred count, else 3" }),
    language: languageSchema.optional().openapi({ description: "Defaults to the user's language; else the profile's" }),
  })
  .strict()
  .openapi("GenerateOpeners");

export const openerGenerationStartedSchema = z
  .object({ generationId: z.string(), wsUrl: z.string() })
  .openapi("OpenerGenerationStarted", { description: "Connect to wsUrl and authenticate: the room streams opener.delta, then opener.completed" });

export const openerSchema = z
  .object({ id: z.string(), rank: z.number().int(), tone: z.string().nullable(), text: z.string(), liked: z.boolean().nullable(), createdAt: z.string() })
  .openapi("Opener");

export const openerGroupSchema = z
  .object({
    generationId: z.string(),
    profile: z.record(z.string(), z.unknown()),
    tone: z.string().nullable(),
    createdAt: z.string(),
    openers: z.array(openerSchema),
  })
  .openapi("OpenerGeneration");

export const openerHistorySchema = z.object({ items: z.array(openerGroupSchema), nextCursor: z.string().nullable() }).openapi("OpenerHistory");

export const openerHistoryQuerySchema = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(50).default(20),
});

export const openerIdParamsSchema = z.object({
  id: z.string().regex(ROOM_ID_PATTERN, "Not an opener id").openapi({ param: { name: "id", in: "path" } }),
});

export const toggleOpenerSchema = z.object({ liked: z.boolean().nullable() }).strict().openapi("ToggleOpener");
