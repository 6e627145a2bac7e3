import { z } from "zod";
import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage, outputJsonSchema } from "./data";
import type { OpenerProfile as StoredOpenerProfile } from "../../db/schema";

export const OPENER_PROMPT_VERSION = "opener@3";

export const OPENER_MAX_CHARS = 200;

/**
 * What the model answers: exactly `count` openers, text only. The tone is the one asked for and
 * is stored by us, never taken from the model.
 */
export function openersOutputSchema(count: number) {
  return z.strictObject({
    openers: z.array(z.strictObject({ text: z.string().trim().min(1).max(OPENER_MAX_CHARS) })).length(count),
    language: z
      .string()
      .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/)
      .describe("The BCP-47 tag of the language the openers are written in"),
  });
}

export type OpenersOutput = z.infer<ReturnType<typeof openersOutputSchema>>;

/** The profile as the model sees it: the photo arrives as a description, never as its key. */
export type OpenerProfile = Omit<StoredOpenerProfile, "photoKey">;

export interface OpenersInput {
  profile: OpenerProfile;
  /** A neutral description of the match's photo, when there is one and it could be read. */
  photoDescription?: string;
  /** The tone asked for; without one, a warm, natural tone. */
  tone: string | null;
  count: number;
  /** The user's language (a tag like "en" or "pt-BR"); else the profile's. */
  language?: string;
}

export function buildOpenerRequest(input: OpenersInput): GenerateRequest {
  return {
    system: [
      "You are Charisma, a warm, respectful dating coach. Write first messages for a new match.",
      `Write exactly ${input.count} distinct openers in a ${input.tone ? `${input.tone}` : "warm, natural"} tone, each under ${OPENER_MAX_CHARS} characters, ${
        input.language ? `in the language with tag ${JSON.stringify(input.language)}` : "in the language of the profile"
      }, each tied to something specific in the profile or the photo description.`,
      "No pickup lines, nothing about appearance only, nothing pushy; never mention sensitive traits (ethnicity, religion, health, sexuality).",
      "Answer only with JSON that fits the given schema, with the tag of the language you wrote in.",
      DATA_RULE,
    ].join("\n"),
    messages: [dataMessage("profile_data", { ...input.profile, photoDescription: input.photoDescription ?? null })],
    maxTokens: 600,
    temperature: 0.9,
    jsonSchema: outputJsonSchema("opener", openersOutputSchema(input.count)),
  };
}
