import { z } from "zod";
import type { GenerateRequest, ImageInput } from "../types";
import { DATA_RULE, outputJsonSchema } from "./data";

export const PHOTO_PROMPT_VERSION = "photo@1";

export const PHOTO_DESCRIPTION_MAX_CHARS = 300;

/** What the vision model answers for a match's profile photo: one short, neutral description. */
export const photoOutputSchema = z.strictObject({
  description: z.string().trim().min(1).max(PHOTO_DESCRIPTION_MAX_CHARS),
});

export type PhotoOutput = z.infer<typeof photoOutputSchema>;

/**
 * Describes a profile photo for the opener prompt: what is visibly there (setting, activity,
 * objects, pets, clothing style), so an opener can mention it. Never guesses about who the
 * person is — a guess about a sensitive trait in an opener is hurtful and often wrong.
 */
export function buildPhotoRequest(image: ImageInput): GenerateRequest {
  return {
    system: [
      `Describe this dating-profile photo in one or two neutral sentences, under ${PHOTO_DESCRIPTION_MAX_CHARS} characters.`,
      "Mention only what is plainly visible: the setting, the activity, objects, animals, clothing style, the mood of the scene.",
      "Never state or guess anyone's ethnicity, race, religion, health, disability, body shape or weight, sexuality, gender identity, age, politics or other sensitive traits, and never judge attractiveness.",
      "If nothing useful is visible, say so briefly. Answer only with JSON that fits the given schema.",
      DATA_RULE.replace("tagged data block", "photo"),
    ].join("\n"),
    messages: [{ role: "user", content: "The match's profile photo:", images: [image] }],
    maxTokens: 200,
    temperature: 0,
    jsonSchema: outputJsonSchema("photo", photoOutputSchema),
  };
}
