// Generators of bad input for the bad-input part of the resilience suite. Valid-looking values come
// from the JSON Schemas the API document (or z.toJSONSchema of a zod schema) declares; each bad
// case starts from one of them and breaks one place in it, in one of the classes below.
import fc from "fast-check";
import { CANARY } from "./leaks";

/** The part of JSON Schema (2020-12, as OpenAPI 3.1 and z.toJSONSchema write it) the generators read. */
export type JsonSchema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
};

export type Resolve = (schema: JsonSchema | undefined) => JsonSchema;

/** Follows `#/components/schemas/…` references of an OpenAPI document. */
export function resolver(components: Record<string, JsonSchema> = {}): Resolve {
  return (schema) => {
    let current = schema ?? {};
    for (let hops = 0; current.$ref && hops < 10; hops++) current = components[current.$ref.replace("#/components/schemas/", "")] ?? {};
    return current;
  };
}

/** JSON text that JSON.stringify cannot write: a number beyond doubles (`1e309`), nesting 10,000 deep. */
export class RawJson {
  constructor(readonly text: string) {}
}
const raw = (text: string) => new RawJson(text);

/** A value as JSON text, RawJson spliced in as is; own `__proto__` keys are written like any other. */
export function jsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).map((key) => `${JSON.stringify(key)}:${jsonText((value as Record<string, unknown>)[key])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function typesOf(schema: JsonSchema): string[] {
  if (schema.type === undefined) return [];
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

const INT32 = 2 ** 31 - 1;
const DATE_ONLY = /\\d\{4\}-\\d\{2\}-\\d\{2\}/;

function freeText(min: number, max: number): fc.Arbitrary<string> {
  // Every text the suite sends carries CANARY, so a leaked one is found in the logs.
  if (max > CANARY.length + 1) return fc.string({ maxLength: Math.min(40, max - CANARY.length - 1) }).map((text) => `${CANARY} ${text}`);
  return fc.string({ minLength: Math.max(min, 1), maxLength: max });
}

function validString(schema: JsonSchema): fc.Arbitrary<string> {
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? 200;
  if (schema.format === "date-time") {
    return fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((date) => date.toISOString());
  }
  if (schema.pattern && DATE_ONLY.test(schema.pattern)) {
    return fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((date) => date.toISOString().slice(0, 10));
  }
  if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter((text) => text.length >= min && text.length <= max);
  return freeText(min, max);
}

/** Values `schema` accepts, as far as JSON Schema says (a zod refinement it cannot express may still refuse one). */
export function validValue(schema: JsonSchema | undefined, resolve: Resolve): fc.Arbitrary<unknown> {
  const s = resolve(schema);
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const variants = s.oneOf ?? s.anyOf;
  if (variants) return fc.oneof(...variants.map((variant) => validValue(variant, resolve)));
  const types = typesOf(s);
  if (types.length > 1) return fc.oneof(...types.map((type) => validValue({ ...s, type }, resolve)));
  switch (types[0]) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer":
    case "number": {
      const min = Math.max(-INT32, s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -1000));
      const max = Math.min(INT32, s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : min + 1000));
      return fc.integer({ min, max });
    }
    case "string":
      return validString(s);
    case "array": {
      const minLength = s.minItems ?? 0;
      return fc.array(validValue(s.items, resolve), { minLength, maxLength: Math.max(minLength, Math.min(s.maxItems ?? 3, 3)) });
    }
    case "object": {
      const properties = s.properties ?? {};
      const model = Object.fromEntries(Object.entries(properties).map(([key, property]) => [key, validValue(property, resolve)]));
      return fc.record(model, { requiredKeys: (s.required ?? []).filter((key) => key in properties) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** One place in a value, and the schema that governs it there (undefined: none known). */
type Site = { path: Array<string | number>; schema: JsonSchema | undefined };

function propertySchema(schema: JsonSchema, key: string, owner: Record<string, unknown>, resolve: Resolve): JsonSchema | undefined {
  const variants = (schema.oneOf ?? schema.anyOf ?? [schema]).map(resolve);
  // A discriminated union: the variant whose `type` property takes this value's `type`.
  const variant =
    variants.find((v) => v.properties?.[key] && (owner.type === undefined || !v.properties.type || resolve(v.properties.type).enum?.includes(owner.type) || resolve(v.properties.type).const === owner.type)) ??
    variants.find((v) => v.properties?.[key]);
  return variant?.properties?.[key];
}

function sitesOf(value: unknown, schema: JsonSchema | undefined, resolve: Resolve, path: Array<string | number> = []): Site[] {
  const s = schema && resolve(schema);
  const here: Site = { path, schema: s };
  if (Array.isArray(value)) {
    const items = s?.items ?? (s?.oneOf ?? s?.anyOf ?? []).map(resolve).find((v) => v.items)?.items;
    return [here, ...value.flatMap((item, i) => sitesOf(item, items, resolve, [...path, i]))];
  }
  if (value !== null && typeof value === "object" && !(value instanceof RawJson)) {
    const owner = value as Record<string, unknown>;
    // An optional property the valid value left out is a place to break too (a bad `sentAt`).
    const absent = Object.keys(s?.properties ?? {})
      .filter((key) => !(key in owner))
      .map((key): Site => ({ path: [...path, key], schema: s?.properties?.[key] && resolve(s.properties[key]) }));
    return [here, ...absent, ...Object.keys(owner).flatMap((key) => sitesOf(owner[key], s && propertySchema(s, key, owner, resolve), resolve, [...path, key]))];
  }
  return [here];
}

/**
 * Where a class of breakage belongs: text breakage on free text (what reaches the database as
 * sent; an enum or a pattern refuses it anyway), prototype keys on objects, edges on typed leaves.
 */
function fits(cls: BodyClass, site: Site): boolean {
  switch (cls) {
    case "unicode":
    case "huge-string":
      return accepts(site.schema, "") && !site.schema?.enum && !site.schema?.pattern && !site.schema?.format;
    case "proto-keys":
      return site.path.length === 0 || accepts(site.schema, {});
    case "boundary":
      return site.schema !== undefined && !accepts(site.schema, {});
    default:
      return true;
  }
}

function setAt(value: unknown, path: Array<string | number>, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path as [string | number, ...Array<string | number>];
  if (Array.isArray(value)) return value.map((item, i) => (i === head ? setAt(item, rest, replacement) : item));
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  Object.defineProperty(copy, head, { value: setAt(copy[head], rest, replacement), enumerable: true, writable: true, configurable: true });
  return copy;
}

function accepts(schema: JsonSchema | undefined, value: unknown): boolean {
  const types = schema ? typesOf(schema) : [];
  if (types.length === 0) return false;
  const type = value === null ? "null" : Array.isArray(value) ? "array" : typeof value === "number" ? (Number.isInteger(value) ? "integer" : "number") : typeof value;
  return types.includes(type) || (type === "integer" && types.includes("number"));
}

/** Values of every JSON type: each site gets the ones its schema does not take. */
const ANY_TYPE: unknown[] = [`${CANARY} text`, "", 0, 42, -7.5, true, false, null, [], [1, "two"], {}, { [CANARY]: 1 }];

/** Numbers at and past every edge a JSON number has, some only writable as text. */
function numberBoundaries(schema: JsonSchema): unknown[] {
  const edges = [schema.minimum, schema.maximum, schema.exclusiveMinimum, schema.exclusiveMaximum].filter((edge): edge is number => edge !== undefined);
  return [
    ...edges.flatMap((edge) => [edge - 1, edge, edge + 1, edge + 0.5]),
    -1, 0, raw("-0"), 1.5, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, 2 ** 53, -(2 ** 53), raw("9007199254740993"),
    raw("1e309"), raw("-1e309"), raw("1E-400"), raw("123456789012345678901234567890"), Number.MAX_VALUE, raw("0.1e1"),
    "NaN", "Infinity", "1e309", "-1", "9007199254740993",
  ];
}

/** Date-times that parse somewhere and not elsewhere: year 0, past year 9999, a 30 February, no zone. */
const DATE_TIME_BOUNDARIES = [
  "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "1969-12-31T23:59:59.999999999Z",
  "2023-02-29T00:00:00Z", "2024-02-29T24:00:00Z", "+275760-09-13T00:00:00.000Z", "-271821-04-20T00:00:00.000Z", "2024-01-01",
  "2024-01-01T00:00:00", "1e309", "NaN", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00.0000000000000000000001Z",
];
const DATE_BOUNDARIES = ["0000-00-00", "0000-01-01", "2024-13-45", "9999-99-99", "2023-02-29", "2024-02-30", "0001-01-01", "9999-12-31"];

function stringBoundaries(schema: JsonSchema): unknown[] {
  const max = schema.maxLength ?? 200;
  const min = schema.minLength ?? 0;
  const near = (length: number) => (length <= CANARY.length ? "a".repeat(Math.max(length, 0)) : `${CANARY}${"a".repeat(length - CANARY.length)}`);
  const enumMisses = (schema.enum ?? []).filter((e): e is string => typeof e === "string").flatMap((e) => [e.toUpperCase(), `${e} `, ` ${e}`, `${e}\u0000`]);
  return [
    "", " ", "\t\n", near(max), near(max + 1), near(min - 1), "NaN", "Infinity", "-1", "1e309", "9007199254740993", "0x1F", "null", "true", "[]", "{}",
    ...enumMisses,
    ...(schema.format === "date-time" ? DATE_TIME_BOUNDARIES : []),
    ...(schema.pattern && DATE_ONLY.test(schema.pattern) ? DATE_BOUNDARIES : []),
  ];
}

function boundaries(schema: JsonSchema | undefined, current: unknown): unknown[] {
  if (!schema) return ["", -1, 2 ** 53, raw("1e309")];
  const types = typesOf(schema);
  const values: unknown[] = [];
  if (types.includes("integer") || types.includes("number")) values.push(...numberBoundaries(schema));
  if (types.includes("string") || schema.enum) values.push(...stringBoundaries(schema));
  if (types.includes("array")) {
    const item = Array.isArray(current) && current.length > 0 ? current[0] : null;
    values.push([], Array.from({ length: (schema.maxItems ?? 50) + 1 }, () => item), Array.from({ length: schema.maxItems ?? 50 }, () => item));
  }
  if (types.includes("object") || schema.oneOf) values.push({}, { [CANARY]: null });
  return values.length > 0 ? values : ["", -1, 2 ** 53, raw("1e309")];
}

/** Characters that break naive code: controls, bidi overrides, noncharacters, combining marks, markup. */
const NASTY_UNICODE = [
  "\u0001\u0002\u001f", "\u007f", "\u0085", "\u2028\u2029", "\u202e", "\u200b\u200d", "\ufeff", "\uffff", "\ufffe", "😀", "e\u0301\u0301\u0301",
  "\u{10ffff}", "Z\u0338\u0321\u031b\u031e\u0347", "\\u0000", "%00", "${7*7}", "<script>", "'; drop table users; --", "\r\n",
];
/** What no UTF-8 text column holds: NUL, and surrogates without their pair. */
const UNSTORABLE_UNICODE = ["\u0000", "\ud800", "\udfff", "\udbff", "\udc00\ud800"];

/**
 * Percent-encoding of any JS string: a lone surrogate, which encodeURIComponent refuses, becomes
 * its three WTF-8 bytes (%ED%A0%80), which no UTF-8 decoder accepts.
 */
export function percentEncode(text: string): string {
  return Array.from(text, (char) => {
    const code = char.codePointAt(0)!;
    if (code < 0xd800 || code > 0xdfff) return encodeURIComponent(char);
    return [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((byte) => `%${byte.toString(16).toUpperCase()}`).join("");
  }).join("");
}

/** Text with nasty characters: storable ones, or (as often) one Postgres refuses. */
const unicodeText = fc
  .tuple(fc.subarray(NASTY_UNICODE, { minLength: 1, maxLength: 3 }), fc.option(fc.constantFrom(...UNSTORABLE_UNICODE), { freq: 2 }))
  .map(([parts, unstorable]) => `${CANARY}${[...parts, ...(unstorable === null ? [] : [unstorable])].join("a")}`);

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * `length` characters that do not compress (mulberry32 from `seed`): a repeated one would shrink
 * to nothing in Postgres, and so never show that a long key outgrows its index.
 */
export function noise(seed: number, length: number): string {
  let state = seed >>> 0;
  let text = "";
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    text += BASE64URL[((t ^ (t >>> 14)) >>> 0) % 64];
  }
  return text;
}

/** Long text: repeated characters (plain, accented, astral, NUL, space) or noise. */
const hugeText = fc
  .tuple(fc.constantFrom(3_000, 20_000, 60_000, 70_000, 200_000), fc.constantFrom("x", "é", "😀", "\u0000", " ", "noise"), fc.nat())
  .map(([length, unit, seed]) => `${CANARY} ${unit === "noise" ? noise(seed, length) : unit.repeat(Math.ceil(length / unit.length))}`);

/** Nesting 1,000, 10,000 or 100,000 deep, of arrays or objects (the last is over every body limit). */
export const deepNesting = fc
  .tuple(fc.constantFrom(1_000, 10_000, 100_000), fc.boolean())
  .map(([depth, arrays]) => raw(arrays ? `${"[".repeat(depth)}${"]".repeat(depth)}` : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`));

/** Keys that reach Object.prototype when code assigns them: `__proto__`, `constructor`, … */
const protoKeys = fc.tuple(
  fc.constantFrom("__proto__", "constructor", "prototype", "__defineGetter__", "hasOwnProperty", "toString", "valueOf"),
  fc.constantFrom<unknown>({ polluted: CANARY }, { prototype: { polluted: CANARY } }, "x", null, 1, []),
);

function withKey(target: unknown, key: string, value: unknown): Record<string, unknown> {
  const copy: Record<string, unknown> = target !== null && typeof target === "object" && !Array.isArray(target) && !(target instanceof RawJson) ? { ...(target as Record<string, unknown>) } : {};
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

export const BODY_CLASSES = ["wrong-type", "boundary", "huge-string", "deep-nesting", "unicode", "proto-keys"] as const;
export type BodyClass = (typeof BODY_CLASSES)[number];

/** A bad version of `value`, a valid instance of `schema`: one place in it broken in the way `cls` says. */
export function breakValue(value: unknown, schema: JsonSchema | undefined, resolve: Resolve, cls: BodyClass): fc.Arbitrary<{ value: unknown; where: string }> {
  const sites = sitesOf(value, schema, resolve);
  const candidates = sites.filter((site) => fits(cls, site));
  return fc.constantFrom(...(candidates.length > 0 ? candidates : sites)).chain((site) => {
    const current = site.path.reduce<unknown>((v, key) => (v as Record<string | number, unknown> | undefined)?.[key], value);
    const where = site.path.length === 0 ? "(body)" : site.path.join(".");
    const replacement: fc.Arbitrary<unknown> = (() => {
      switch (cls) {
        case "wrong-type": {
          const wrong = ANY_TYPE.filter((candidate) => !accepts(site.schema, candidate));
          return fc.constantFrom(...(wrong.length > 0 ? wrong : ANY_TYPE));
        }
        case "boundary":
          return fc.constantFrom(...boundaries(site.schema, current));
        case "huge-string":
          return hugeText;
        case "deep-nesting":
          return deepNesting;
        case "unicode":
          return unicodeText;
        case "proto-keys":
          return protoKeys.map(([key, inner]) => withKey(current, key, inner));
      }
    })();
    return replacement.map((bad) => ({ value: setAt(value, site.path, bad), where }));
  });
}

/** Query values for a parameter of `schema`: its edges, numbers no double holds, junk, percent junk. */
export function badQueryValue(schema: JsonSchema | undefined, resolve: Resolve): fc.Arbitrary<string> {
  const s = resolve(schema);
  const edges = [s.minimum, s.maximum].filter((edge): edge is number => edge !== undefined).flatMap((edge) => [String(edge - 1), String(edge + 1)]);
  return fc.oneof(
    fc.constantFrom(
      ...edges, "", " ", "garbage", "-1", "0", "NaN", "Infinity", "-Infinity", "1e309", "9007199254740992", "9007199254740993", "1.5", "0x10", "5abc", "%205",
      "%EF%BC%95", "9".repeat(400), "[]", "{}", "null", "true", "%", "%ff", "%zz", "%00", "%E2%80%AE", "__proto__", "a%26b%3Dc",
    ),
    hugeText.map((text) => percentEncode(text.slice(0, 10_000))),
    unicodeText.map(percentEncode),
  );
}

const base64Url = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text))).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

/** Cursors: not base64, base64 of not-JSON, of JSON of the wrong shape, of dates Postgres reads differently. */
export const junkCursor: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("garbage", "!!!", "====", "a".repeat(201), "+/+/", "%00", "%ff", ""),
  {
    weight: 3,
    arbitrary: fc
    .constantFrom<unknown>(
      ["not-a-date", "x"], ["1", "x"], ["2030", "x"], ["Tue Jan 01 2030", "x"], ["+275760-09-13T00:00:00.000Z", "x"], ["0000-01-01T00:00:00Z", "x"],
      ["-000001-01-01T00:00:00Z", "x"], ["2024-02-30T00:00:00Z", "x"], ["2024-01-01T00:00:00Z", 5], ["2024-01-01T00:00:00Z", `x\u0000${CANARY}`],
      ["2024-01-01T00:00:00Z", "x", "extra"], [], {}, "str", null, 1e308, ["1e309", "x"], ["2024-01-01T00:00:00Z"], [["2024-01-01T00:00:00Z"], "x"],
    )
    .map((value) => base64Url(JSON.stringify(value))),
  },
  fc.constant(base64Url("{not json")),
);

/** Path segments no route takes: wrong shape, overlong, percent junk, dot segments, controls. */
export const junkSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "A", "-", "x".repeat(41), "a".repeat(5000), "%00", "%ff", "%", "%zz", "%2e%2e", "..", ".", "%2F", "a%2Fb", "%E2%80%AE", "%C0%AE", "%ED%A0%80",
    "null", "undefined", "__proto__", "constructor", "0", "-1", "9007199254740993", "1e309", "NaN", "%3Cscript%3E", "a%20b", "~", "*", "%u0000", "%%",
  ),
  unicodeText.map(percentEncode),
);

/** Content types that are not what the body is. */
export const CONTENT_TYPE_LIES = [
  "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/json; charset=utf-16",
  "application/jsonx", "application/json-seq", "image/png", "", "*/*", "application/json, text/plain", "application/json\u00e9",
];

/** Bodies that are not JSON, or JSON of a kind no route takes. */
export function invalidJson(valid: string): fc.Arbitrary<string> {
  return fc.constantFrom(
    valid.slice(0, Math.max(1, Math.floor(valid.length / 2))), "{", "", " ", "null", "[]", "1", '"str"', "{'a':1}", '{"a":1,}', "NaN", `\ufeff${valid}`,
    `${valid}${valid}`, `${valid}garbage`, "{\"a\":1}\u0000", "[1,2", "\"\\ud800\"", "{\"a\":\"\\u00\"}", "tru", "{\"a\" 1}", "\u0000",
  );
}
