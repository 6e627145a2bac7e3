import { OCR_PROMPT_VERSION } from "../../ai/prompts/ocr.v1";

/**
 * Where one user's OCR result for one screenshot (by its SHA-256) is cached. The user id is part
 * of the key, so nobody can learn from a cache hit that someone else uploaded the same image;
 * the entry lives no longer than the screenshot (see uploads/retention.ts).
 */
export function ocrCacheKey(userId: string, sha256: string): string {
  return `ocr:${OCR_PROMPT_VERSION}:${userId}:${sha256}`;
}
