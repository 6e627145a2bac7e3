// Deterministic "model" output for the local AI upstream: the same request always gets the same
// answer, structured requests get JSON that fits their schema, and embeddings put texts that
// share words close together, so retrieval over them is meaningful.
import { createHash } from "node:crypto";

export const EMBEDDING_DIMENSIONS = 1536;

const VOCABULARY = (
  "that sounds fun tell me more about your weekend plans i love that spot have you tried the new " +
  "coffee place downtown what got you into hiking honestly your taste in music is great we should " +
  "compare playlists sometime how about drinks on thursday you seem like someone with good stories " +
  "favourite travel memory so far i am curious what made you laugh today"
).split(" ");

/** A small seeded PRNG (mulberry32): reproducible sequences from a request hash. */
export function seededRandom(seedText: string): () => number {
  let seed = createHash("sha256").update(seedText).digest().readUInt32LE(0);
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Text split into stream-sized tokens: each word with its leading space, as vendors send them. */
export function generateTokens(seedText: string, maxTokens = 24): string[] {
  const random = seededRandom(seedText);
  const count = Math.max(1, Math.min(maxTokens, 12 + Math.floor(random() * 12)));
  return Array.from({ length: count }, (_, i) => {
    const word = VOCABULARY[Math.floor(random() * VOCABULARY.length)]!;
    return i === 0 ? word[0]!.toUpperCase() + word.slice(1) : ` ${word}`;
  }).concat(".");
}

type Schema = Record<string, unknown>;

/** A value that fits a JSON Schema (or Gemini's upper-case Schema dialect), derived from the seed. */
export function valueForSchema(schema: Schema | undefined, random: () => number, depth = 0): unknown {
  if (!schema || depth > 8) return null;
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return pick(schema.enum as unknown[]);
  if ("const" in schema) return schema.const;
  for (const key of ["anyOf", "oneOf"] as const) {
    const options = schema[key];
    if (Array.isArray(options) && options.length > 0) {
      const concrete = (options as Schema[]).find((option) => String(option.type ?? "").toLowerCase() !== "null");
      return valueForSchema(concrete ?? (options[0] as Schema), random, depth + 1);
    }
  }
  const rawType = Array.isArray(schema.type)
    ? (schema.type as string[]).find((type) => type.toLowerCase() !== "null")
    : schema.type;
  const type = String(rawType ?? (schema.properties ? "object" : "string")).toLowerCase();
  switch (type) {
    case "object": {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      return Object.fromEntries(
        Object.entries(properties).map(([name, inner]) => [name, valueForSchema(inner, random, depth + 1)]),
      );
    }
    case "array": {
      const min = Number(schema.minItems ?? 1);
      const max = Number(schema.maxItems ?? Math.max(min, 3));
      const length = Math.max(min, Math.min(max, min + Math.floor(random() * (max - min + 1))));
      return Array.from({ length }, () => valueForSchema(schema.items as Schema, random, depth + 1));
    }
    case "integer":
    case "number": {
      const min = Number(schema.minimum ?? 0);
      const max = Number(schema.maximum ?? (type === "integer" ? 100 : 1));
      const value = min + random() * (max - min);
      return type === "integer" ? Math.round(value) : Math.round(value * 1000) / 1000;
    }
    case "boolean":
      return random() < 0.5;
    case "null":
      return null;
    default: {
      const words = generateTokens(String(random()), 8).join("");
      const maxLength = Number(schema.maxLength ?? 200);
      return words.slice(0, Math.max(Number(schema.minLength ?? 1), Math.min(maxLength, words.length)));
    }
  }
}

function words(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length >= 2)
    // A crude stem, so "date" and "dates", "plan" and "planning" meet.
    .map((word) => word.replace(/(ing|ed|es|s)$/u, ""));
}

/** Hashed bag of words, L2-normalised: shared words mean a high cosine similarity. */
export function embed(text: string, dimensions = EMBEDDING_DIMENSIONS): number[] {
  const vector = new Array<number>(dimensions).fill(0);
  for (const word of words(text)) {
    const digest = createHash("sha256").update(word).digest();
    for (let i = 0; i < 4; i++) {
      const index = digest.readUInt32LE(i * 4) % dimensions;
      vector[index]! += digest[16 + i]! & 1 ? 1 : -1;
    }
  }
  const norm = Math.hypot(...vector);
  if (norm === 0) {
    vector[0] = 1;
    return vector;
  }
  return vector.map((value) => value / norm);
}

/** Rough token count for usage figures: about four characters a token, as vendors estimate. */
export function countTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
