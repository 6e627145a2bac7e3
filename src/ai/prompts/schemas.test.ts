import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { testConfig } from "../../../test/helpers";
import { modelIds } from "../models";
import { createAdapters } from "../providers";
import { completeStructured } from "../strategy";
import type { AiCallKind, GenerateRequest } from "../types";
import { outputJsonSchema } from "./data";
import { buildOcrRequest, ocrOutputSchema } from "./ocr.v1";
import { buildOpenerRequest, openersOutputSchema } from "./opener.v1";
import { buildPhaseRequest, phaseOutputSchema } from "./phase.v2";
import { buildPhotoRequest, photoOutputSchema } from "./photo.v1";
import { buildTipTranslationRequest, tipTranslationOutputSchema } from "./tip-translation.v1";
import { buildSuggestionsRequest, SUGGESTION_MAX_CHARS, suggestionsOutputSchema } from "./suggestions.v1";

type Json = Record<string, unknown>;

const conversation = [
  { sender: "match" as const, text: "I just got back from Lisbon!" },
  { sender: "user" as const, text: "No way, how was it?" },
];
const suggestions = (count: number) =>
  buildSuggestionsRequest({ messages: conversation, phase: 2, tone: "playful", count, knowledge: [] });

const openers = (count: number) =>
  buildOpenerRequest({ profile: { name: "Sam", bio: "Climber", interests: ["bouldering"] }, photoDescription: "A person on a rock wall", tone: "witty", count });
const png = { mimeType: "image/png", base64: "iVBORw0KGgo=" };

/**
 * Every prompt with structured output: the request a vendor gets, and the schema its answer is
 * parsed with (`schemaName`: the JSON Schema's name, when it is not the call's kind).
 */
const structured: Array<{ name: string; kind: AiCallKind; schemaName?: string; request: GenerateRequest; schema: z.ZodType }> = [
  ...[1, 3, 5].map((count) => ({
    name: `suggestions (${count})`,
    kind: "suggestions" as const,
    request: suggestions(count),
    schema: suggestionsOutputSchema(count),
  })),
  { name: "phase", kind: "phase", schemaName: "chat_analysis", request: buildPhaseRequest(conversation), schema: phaseOutputSchema },
  { name: "ocr", kind: "ocr", request: buildOcrRequest([png]), schema: ocrOutputSchema },
  ...[1, 2, 3, 4, 5].map((count) => ({ name: `openers (${count})`, kind: "opener" as const, request: openers(count), schema: openersOutputSchema(count) })),
  { name: "photo", kind: "opener", schemaName: "photo", request: buildPhotoRequest(png), schema: photoOutputSchema },
  { name: "tip translation", kind: "tip", schemaName: "tip_translation", request: buildTipTranslationRequest("Ask one open question.", "es"), schema: tipTranslationOutputSchema },
];

/**
 * Whether `value` fits a JSON Schema, for the keywords structured output uses. An unknown
 * keyword throws rather than being ignored: a constraint this cannot check could hide drift.
 */
function fits(schema: Json, value: unknown): boolean {
  const known = new Set([
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "anyOf", "pattern",
    // Words for the model, no constraint.
    "description",
  ]);
  const unknown = Object.keys(schema).filter((key) => !known.has(key));
  if (unknown.length) throw new Error(`the agreement check does not know ${unknown.join(", ")}: teach fits() and edges() about it`);
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Json[]).some((option) => fits(option, value));
  if (Array.isArray(schema.type)) return (schema.type as string[]).some((type) => fits({ ...schema, type }, value));
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) return false;
  const has = (key: string) => typeof schema[key] === "number";
  const n = (key: string) => schema[key] as number;
  switch (schema.type) {
    case "null":
      return value === null;
    case "boolean":
      return typeof value === "boolean";
    case "string":
      return (
        typeof value === "string" &&
        (!has("minLength") || [...value].length >= n("minLength")) &&
        (!has("maxLength") || [...value].length <= n("maxLength")) &&
        (typeof schema.pattern !== "string" || new RegExp(schema.pattern, "u").test(value))
      );
    case "integer":
    case "number":
      return (
        typeof value === "number" &&
        Number.isFinite(value) &&
        (schema.type === "number" || Number.isInteger(value)) &&
        (!has("minimum") || value >= n("minimum")) &&
        (!has("maximum") || value <= n("maximum")) &&
        (!has("exclusiveMinimum") || value > n("exclusiveMinimum")) &&
        (!has("exclusiveMaximum") || value < n("exclusiveMaximum"))
      );
    case "array":
      return (
        Array.isArray(value) &&
        (!has("minItems") || value.length >= n("minItems")) &&
        (!has("maxItems") || value.length <= n("maxItems")) &&
        value.every((item) => fits(schema.items as Json, item))
      );
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
      const properties = (schema.properties ?? {}) as Record<string, Json>;
      const record = value as Json;
      if (((schema.required ?? []) as string[]).some((key) => !(key in record))) return false;
      if (schema.additionalProperties === false && Object.keys(record).some((key) => !(key in properties))) return false;
      return Object.entries(record).every(([key, item]) => !(key in properties) || fits(properties[key]!, item));
    }
    default:
      throw new Error(`the agreement check does not know type ${JSON.stringify(schema.type)}`);
  }
}

/** Where a bound is missing, a value far out, so a bound only zod has shows up. */
const FAR = { length: 10_000, items: 50, number: 1e12 };

/** One value that fits the schema (its smallest), to hold the other fields still while one varies. */
function base(schema: Json): unknown {
  if (Array.isArray(schema.anyOf)) return base((schema.anyOf as Json[])[0]!);
  if (Array.isArray(schema.type)) return base({ ...schema, type: (schema.type as string[])[0] });
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const n = (key: string) => schema[key] as number | undefined;
  switch (schema.type) {
    case "string": {
      const plain = "x".repeat(Math.max(n("minLength") ?? 0, 1));
      // A patterned string (a language tag) needs a value of its shape.
      return typeof schema.pattern === "string" ? (["xx", "en", "pt-BR"].find((candidate) => new RegExp(schema.pattern as string, "u").test(candidate)) ?? plain) : plain;
    }
    case "integer":
    case "number":
      return Math.max(n("minimum") ?? n("exclusiveMinimum") ?? -FAR.number, Math.min(n("maximum") ?? n("exclusiveMaximum") ?? FAR.number, 0));
    case "array":
      return Array.from({ length: Math.max(n("minItems") ?? 0, 1) }, () => base(schema.items as Json));
    case "object":
      return Object.fromEntries(Object.entries((schema.properties ?? {}) as Record<string, Json>).map(([key, inner]) => [key, base(inner)]));
    case "boolean":
      return false;
    default:
      return null;
  }
}

/**
 * Whole answers at and just past every edge of the schema, one edge at a time: each length,
 * range and count limit and one beyond it, every enum value and one outside, each required
 * field left out, a wrong type at each place. (Unknown extra keys are left out on purpose: the
 * vendor is told additionalProperties false, while zod objects drop such keys rather than fail.)
 */
function edges(schema: Json): unknown[] {
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Json[]).flatMap(edges);
  if (Array.isArray(schema.type)) return (schema.type as string[]).flatMap((type) => edges({ ...schema, type }));
  if (Array.isArray(schema.enum)) return [...schema.enum, "not-one-of-them", 0];
  const n = (key: string) => schema[key] as number | undefined;
  switch (schema.type) {
    case "string": {
      const min = n("minLength") ?? 0;
      const max = n("maxLength") ?? FAR.length;
      const lengths = [...new Set([min - 1, min, max, max + 1])].filter((length) => length >= 0);
      const patterned = typeof schema.pattern === "string" ? ["en", "pt-BR", "zh-Hant-TW", "EN", "en_US", "english", "e", "-en", ""] : [];
      return [...lengths.map((length) => "x".repeat(length)), ...patterned, 0];
    }
    case "integer":
    case "number": {
      const step = schema.type === "integer" ? 1 : 0.001;
      const low = n("minimum") ?? n("exclusiveMinimum") ?? -FAR.number;
      const high = n("maximum") ?? n("exclusiveMaximum") ?? FAR.number;
      const fraction = schema.type === "integer" ? [Math.floor((low + high) / 2) + 0.5] : [];
      return [low - step, low, low + step, high - step, high, high + step, ...fraction, "1"];
    }
    case "array": {
      const item = schema.items as Json;
      const min = n("minItems") ?? 0;
      const max = n("maxItems") ?? FAR.items;
      const ofLength = (length: number) => Array.from({ length }, () => base(item));
      const withFirst = (value: unknown) => [value, ...ofLength(Math.max(min, 1) - 1)];
      const lengths = [...new Set([min - 1, min, max, max + 1])].filter((length) => length >= 0);
      return [...lengths.map(ofLength), ...edges(item).map(withFirst), "not an array"];
    }
    case "object": {
      const properties = (schema.properties ?? {}) as Record<string, Json>;
      const whole = base(schema) as Json;
      const without = (key: string) => Object.fromEntries(Object.entries(whole).filter(([name]) => name !== key));
      return [
        whole,
        ...Object.entries(properties).flatMap(([key, inner]) => edges(inner).map((value) => ({ ...whole, [key]: value }))),
        ...((schema.required ?? []) as string[]).map(without),
        [],
      ];
    }
    case "boolean":
      return [true, false, "true"];
    case "null":
      return [null, 0];
    default:
      throw new Error(`the agreement check does not know type ${JSON.stringify(schema.type)}`);
  }
}

/** The answers on which the vendor's JSON Schema and the zod schema disagree. */
function disagreements(jsonSchema: Json, schema: z.ZodType) {
  return edges(jsonSchema)
    .map((value) => ({ value, vendor: fits(jsonSchema, value), zod: schema.safeParse(value).success }))
    .filter(({ vendor, zod }) => vendor !== zod);
}

describe("structured output: the vendor's JSON Schema and the zod schema that parses the answer", () => {
  it.each(structured)("$name: the vendor gets the JSON Schema derived from the schema its answer is parsed with", ({ kind, schemaName, request, schema }) => {
    expect(request.jsonSchema).toEqual(outputJsonSchema(schemaName ?? kind, schema));
  });

  it.each(structured)("$name: they agree on every edge (lengths, ranges, counts, enums, required fields, types)", ({ request, schema }) => {
    const values = edges(request.jsonSchema!.schema);
    // Even the smallest schema (one bounded string) has a handful of edges.
    expect(values.length).toBeGreaterThan(5);
    expect(disagreements(request.jsonSchema!.schema, schema)).toEqual([]);
  });

  it("finds a limit the two do not share, in either direction (the check itself can fail)", () => {
    const schema = suggestionsOutputSchema(3);
    const vendor = JSON.stringify(outputJsonSchema("suggestions", schema).schema);
    const limit = `"maxLength":${SUGGESTION_MAX_CHARS}`;
    expect(vendor).toContain(limit);
    /** The vendor schema as a hand-written copy that drifted would have it. */
    const drifted = (to: string) => JSON.parse(vendor.replace(limit, to)) as Json;
    // The prompt says 300 while validation allows 1000 (or the other way round), or says nothing.
    expect(disagreements(drifted(`"maxLength":1000`), schema)).not.toEqual([]);
    expect(disagreements(drifted(`"maxLength":${SUGGESTION_MAX_CHARS - 1}`), schema)).not.toEqual([]);
    expect(disagreements(drifted(`"maxLength":${SUGGESTION_MAX_CHARS}`), schema)).toEqual([]);
    expect(disagreements(JSON.parse(vendor.replace(`,${limit}`, "")) as Json, schema)).not.toEqual([]);
  });

  it.each(modelIds)("%s: every prompt's structured answer parses with its schema", async (model) => {
    const deps = { adapters: createAdapters(testConfig()), order: [model], firstTokenTimeoutMs: 2_000, totalTimeoutMs: 5_000, record: async () => {} };
    for (const { kind, request, schema } of structured) {
      const { done } = await completeStructured(deps, request, schema, { kind });
      expect(done.model).toBe(model);
    }
  });
});
