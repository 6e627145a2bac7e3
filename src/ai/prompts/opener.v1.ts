import type { GenerateRequest } from "../types";
import { DATA_RULE, dataMessage } from "./data";

export const OPENER_PROMPT_VERSION = "opener@1";

export interface OpenerProfile {
  name?: string;
  bio?: string;
  interests?: string[];
  prompts?: Array<{ question: string; answer: string }>;
}

export function buildOpenerRequest(profile: OpenerProfile, tone: string, count: number): GenerateRequest {
  return {
    system: [
      "You are Charisma, a warm, respectful dating coach. Write first messages for a new match.",
      `Write ${count} openers in a ${tone} tone, one per line, each under 200 characters, each tied to something specific in the profile.`,
      "No pickup lines, nothing about appearance only, nothing pushy.",
      DATA_RULE,
    ].join("\n"),
    messages: [dataMessage("profile_data", profile)],
    maxTokens: 400,
    temperature: 0.9,
  };
}
