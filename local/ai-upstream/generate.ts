// Deterministic "model" output for the local AI upstream: the same request always gets the same
// answer, structured requests get JSON that fits their schema, and embeddings put texts that
// share words close together, so retrieval over them is meaningful.
import { createHash } from "node:crypto";

export const EMBEDDING_DIMENSIONS = 1536;

/** The words answers are made of, per language, so that tests can tell which language came back. */
export const VOCABULARIES: Record<string, string[]> = {
  en: (
    "that sounds fun tell me more about your weekend plans i love that spot have you tried the new " +
    "coffee place downtown what got you into hiking honestly your taste in music is great we should " +
    "compare playlists sometime how about drinks on thursday you seem like someone with good stories " +
    "favourite travel memory so far i am curious what made you laugh today"
  ).split(" "),
  es: (
    "eso suena genial cuéntame más sobre tu fin de semana me encanta ese sitio has probado el nuevo café " +
    "del centro qué te llevó al senderismo deberíamos comparar canciones algún día qué tal unas copas el jueves"
  ).split(" "),
  pt: (
    "isso parece divertido me conta mais sobre o seu fim de semana eu adoro esse lugar você já experimentou " +
    "o novo café do centro o que te levou às trilhas que tal um drink na quinta"
  ).split(" "),
  de: (
    "das klingt toll erzähl mir mehr über dein wochenende ich liebe diesen ort hast du das neue café in der " +
    "innenstadt probiert wie wäre es mit einem drink am donnerstag"
  ).split(" "),
  fr: (
    "ça a l'air génial raconte moi ton week-end j'adore cet endroit as-tu essayé le nouveau café du centre " +
    "que dirais-tu d'un verre jeudi"
  ).split(" "),
  ja: "それは 楽しそう 週末 の 話 を もっと 聞かせて あの お店 大好き 新しい カフェ に 行った こと ある 木曜日 に 飲み に 行こう".split(" "),
};

/** Words that give a language away in a chat; Japanese is told by its script. */
const MARKERS: Record<string, string[]> = {
  en: "the and you your what how are was that this have with for".split(" "),
  es: "que el los las por para una pero muy cómo qué hola gracias está estoy fue tienes eres también".split(" "),
  pt: "você voce não nao muito obrigado olá tudo bem está estou foi tem uma mas também".split(" "),
  de: "und der die das ist nicht ich du wie was ein eine mit auf für sehr hallo danke".split(" "),
  fr: "et le les est pas je tu vous une avec pour très bonjour salut merci quoi comment ça".split(" "),
};

/**
 * The languages a request implies: the language its prompt names for the answer (`in the language
 * with tag "xx"`), and the one its conversation data (the `<…_data>` block) is written in.
 */
export function languageHints(seedText: string): { detected: string; output: string } {
  const block = /<(\w+_data)>([\s\S]*?)<\/\1>/.exec(seedText)?.[2] ?? "";
  let detected = "en";
  if (/[\u3040-\u30ff]/u.test(block)) detected = "ja";
  else {
    const counts = Object.entries(MARKERS).map(([language, markers]) => {
      const words = block.toLowerCase().split(/[^\p{L}]+/u);
      return [language, words.filter((word) => markers.includes(word)).length] as const;
    });
    const best = counts.reduce((a, b) => (b[1] > a[1] ? b : a));
    if (best[1] > 0) detected = best[0];
  }
  const named = /in the language with tag \\?"([A-Za-z]{2,3})(?:-[A-Za-z0-9]{2,8})*\\?"/.exec(seedText)?.[1]?.toLowerCase();
  const output = named && VOCABULARIES[named] ? named : /in the language of the (conversation|profile)/.test(seedText) ? detected : "en";
  return { detected, output };
}

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
export function generateTokens(seedText: string, maxTokens = 24, language = "en"): string[] {
  const random = seededRandom(seedText);
  const vocabulary = VOCABULARIES[language] ?? VOCABULARIES.en!;
  const count = Math.max(1, Math.min(maxTokens, 12 + Math.floor(random() * 12)));
  return Array.from({ length: count }, (_, i) => {
    const word = vocabulary[Math.floor(random() * vocabulary.length)]!;
    return i === 0 ? word[0]!.toUpperCase() + word.slice(1) : ` ${word}`;
  }).concat(".");
}

type Schema = Record<string, unknown>;

/**
 * A value that fits a JSON Schema (or Gemini's upper-case Schema dialect), derived from the seed.
 * Texts are written in `languages.output`; a string property named `language` answers the
 * language the conversation was detected in.
 */
export function valueForSchema(
  schema: Schema | undefined,
  random: () => number,
  languages: { detected: string; output: string } = { detected: "en", output: "en" },
  depth = 0,
): unknown {
  if (!schema || depth > 8) return null;
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return pick(schema.enum as unknown[]);
  if ("const" in schema) return schema.const;
  for (const key of ["anyOf", "oneOf"] as const) {
    const options = schema[key];
    if (Array.isArray(options) && options.length > 0) {
      const concrete = (options as Schema[]).find((option) => String(option.type ?? "").toLowerCase() !== "null");
      return valueForSchema(concrete ?? (options[0] as Schema), random, languages, depth + 1);
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
        Object.entries(properties).map(([name, inner]) => [
          name,
          name === "language" && String(inner.type ?? "").toLowerCase() === "string" ? languages.detected : valueForSchema(inner, random, languages, depth + 1),
        ]),
      );
    }
    case "array": {
      const min = Number(schema.minItems ?? 1);
      const max = Number(schema.maxItems ?? Math.max(min, 3));
      const length = Math.max(min, Math.min(max, min + Math.floor(random() * (max - min + 1))));
      return Array.from({ length }, () => valueForSchema(schema.items as Schema, random, languages, depth + 1));
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
      const words = generateTokens(String(random()), 8, languages.output).join("");
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
