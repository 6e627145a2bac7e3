import { z } from "@hono/zod-openapi";

export const toneSchema = z.enum(["playful", "flirty", "witty", "sincere", "confident", "casual"]);
export const languageSchema = z.string().regex(/^[a-z]{2,3}(-[A-Z]{2})?$/, "Expected a language tag like en or pt-BR");
export const genderSchema = z.enum(["male", "female", "non_binary", "other", "prefer_not_to_say"]);
export const lookingForSchema = z.enum(["men", "women", "everyone"]);
export const ageRangeSchema = z.enum(["18-24", "25-34", "35-44", "45-54", "55+"]);
export const datingGoalSchema = z.enum(["casual", "relationship", "marriage", "friendship", "not_sure"]);

const timezoneSchema = z
  .string()
  .max(64)
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, "Unknown IANA time zone")
  .openapi({ example: "Europe/Paris" });

/** How long a user's screenshots stay in R2 (SPEC §12): until the OCR is confirmed, or a fixed window from the upload. */
export const screenshotRetentionValues = ["after_ocr", "24h", "7d", "30d"] as const;
export const screenshotRetentionSchema = z.enum(screenshotRetentionValues);
export type ScreenshotRetention = z.infer<typeof screenshotRetentionSchema>;
/** The retention of a user who never chose one. */
export const DEFAULT_SCREENSHOT_RETENTION: ScreenshotRetention = "24h";

export const preferencesSchema = z
  .object({
    defaultTone: toneSchema.optional(),
    language: languageSchema.optional(),
    suggestionCount: z.number().int().min(1).max(5).optional(),
    tipHour: z.number().int().min(0).max(23).optional().openapi({ description: "The local hour the daily tip arrives (default 9)" }),
    screenshotRetention: screenshotRetentionSchema.optional().openapi({
      description: "How long screenshots are kept: deleted once the OCR is confirmed (`after_ocr`), or 24 hours (the default), 7 or 30 days after the upload",
    }),
  })
  .strict()
  .openapi("Preferences");

const name = z.string().trim().min(1).max(80);

export const userSchema = z
  .object({
    id: z.string(),
    email: z.string().nullable(),
    firstName: z.string().nullable(),
    lastName: z.string().nullable(),
    gender: genderSchema.nullable(),
    lookingFor: lookingForSchema.nullable(),
    ageRange: ageRangeSchema.nullable(),
    datingGoal: datingGoalSchema.nullable(),
    preferences: preferencesSchema,
    timezone: z.string(),
    dailyTipsEnabled: z.boolean(),
    onboardingCompleted: z.boolean(),
    onboardingCompletedAt: z.string().datetime().nullable(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .openapi("User");

export const updateUserSchema = z
  .object({
    firstName: name.nullable(),
    lastName: name.nullable(),
    gender: genderSchema.nullable(),
    lookingFor: lookingForSchema.nullable(),
    ageRange: ageRangeSchema.nullable(),
    datingGoal: datingGoalSchema.nullable(),
    preferences: preferencesSchema,
    timezone: timezoneSchema,
    dailyTipsEnabled: z.boolean(),
  })
  .partial()
  .strict()
  .refine((body) => Object.keys(body).length > 0, "Send at least one field to update")
  .openapi("UpdateUser");

export const onboardingSchema = z
  .object({
    firstName: name.optional(),
    gender: genderSchema,
    lookingFor: lookingForSchema,
    ageRange: ageRangeSchema,
    datingGoal: datingGoalSchema,
    timezone: timezoneSchema.optional(),
    preferences: preferencesSchema.optional(),
    dailyTipsEnabled: z.boolean().optional(),
  })
  .strict()
  .openapi("Onboarding");

// Expo's push token shapes: ExponentPushToken[…] (classic) and ExpoPushToken[…].
export const expoPushTokenSchema = z
  .string()
  .max(200)
  .regex(/^Expo(nent)?PushToken\[[A-Za-z0-9_-]{10,}\]$/, "Expected an Expo push token like ExponentPushToken[xxxx]")
  .openapi({ example: "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]" });

export const registerPushTokenSchema = z
  .object({ token: expoPushTokenSchema, platform: z.enum(["ios", "android", "web"]) })
  .strict()
  .openapi("RegisterPushToken");

const count = z.number().int().min(0);
/** Interest is 0–100; an average has one decimal. */
const averageInterest = z.number().min(0).max(100).nullable();

export const insightsSchema = z
  .object({
    sessions: z.object({ total: count, analysed: count }).openapi({ description: "The caller's live (not deleted) sessions, and how many have a chat analysis" }),
    interest: z.object({
      average: averageInterest.openapi({ description: "The match's average interest over the analysed sessions (null: none yet)", example: 62.5 }),
      byWeek: z
        .array(z.object({ weekStart: z.string().openapi({ description: "The Monday (UTC) of the ISO week", example: "2026-11-23" }), average: averageInterest, sessions: count }))
        .openapi({ description: "The latest 12 weeks with an analysed session (by the analysis time), oldest first" }),
    }),
    tones: z
      .array(z.object({ tone: z.string(), generated: count, liked: count, disliked: count, copied: count, sent: count }))
      .openapi({ description: "The suggestions of the caller's live sessions per tone, with the feedback given; most generated first" }),
    openers: z.object({ generated: count, liked: count, disliked: count }).openapi({ description: "The caller's magic openers, liked and disliked" }),
    languages: z
      .array(z.object({ language: z.string().openapi({ example: "en" }), sessions: count }))
      .openapi({ description: "The languages of the analysed sessions, most sessions first" }),
  })
  .openapi("Insights");
