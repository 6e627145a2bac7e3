import type { GenerateRequest, Usage } from "./types";

/**
 * Token estimates for the calls a vendor never reports on. Vendors send usage at the end of a
 * stream, so a cancelled, timed-out or broken call carries no figures, yet the vendor bills the
 * prompt and every token it generated. These estimates are what the budget charges instead.
 */

/** OpenAI's rule of thumb for English text; the other vendors' tokenizers land close to it. */
const CHARS_PER_TOKEN = 4;
/**
 * One chat screenshot as the vendors count it: OpenAI high detail is 85 + 170 per 512 px tile
 * (a 1170×2532 phone screenshot scales to 768×1662: 8 tiles, 1,445 tokens); Anthropic charges
 * width×height/750 of the image it resizes to at most ~1.15 MP (~1,600). The higher one is used.
 */
const TOKENS_PER_IMAGE = 1_600;
/** Role and separator tokens each message carries on the wire. */
const TOKENS_PER_MESSAGE = 4;

export const estimateTextTokens = (text: string) => Math.ceil(text.length / CHARS_PER_TOKEN);

/** The prompt as the vendor counts it: instructions, messages, images and the output schema. */
export function estimateInputTokens(request: GenerateRequest): number {
  let tokens = estimateTextTokens(request.system) + TOKENS_PER_MESSAGE;
  for (const message of request.messages) {
    tokens += estimateTextTokens(message.content) + TOKENS_PER_MESSAGE + (message.images?.length ?? 0) * TOKENS_PER_IMAGE;
  }
  if (request.jsonSchema) tokens += estimateTextTokens(JSON.stringify(request.jsonSchema.schema));
  return tokens;
}

/** What was streamed so far: four characters a token, and never less than a token per chunk. */
export function estimateOutputTokens(text: string, chunks: number): number {
  return Math.max(chunks, estimateTextTokens(text));
}

export interface AttemptSeen {
  /** What the vendor reported, possibly early and in parts (Anthropic's message_start has the input). */
  reported: Partial<Usage>;
  text: string;
  chunks: number;
  /** The stream ran to its end, so a reported output count is the final one. */
  finished: boolean;
  /** The vendor did work it bills for: the stream finished or started, or the request was in flight when it was stopped. */
  billed: boolean;
}

/** The usage one attempt is charged: the vendor's figures where it gave them, estimates for the rest. */
export function attemptUsage(request: GenerateRequest, seen: AttemptSeen): { usage: Usage; estimated: boolean } {
  if (!seen.billed) return { usage: { inputTokens: 0, outputTokens: 0 }, estimated: false };
  const { inputTokens, outputTokens } = seen.reported;
  const streamed = estimateOutputTokens(seen.text, seen.chunks);
  // A finished stream's count is final; a zero next to streamed text is a vendor that left it out.
  const finalOutput = seen.finished && outputTokens !== undefined && !(outputTokens === 0 && seen.text) ? outputTokens : undefined;
  return {
    usage: {
      inputTokens: inputTokens ?? estimateInputTokens(request),
      // Mid-stream counts (Gemini's running total) are a floor: the vendor may have generated more.
      outputTokens: finalOutput ?? Math.max(outputTokens ?? 0, streamed),
    },
    estimated: inputTokens === undefined || finalOutput === undefined,
  };
}
