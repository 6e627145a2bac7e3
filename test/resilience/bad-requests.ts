// Bad HTTP requests for the bad-input part of the resilience suite: every route the Worker's API
// document lists, a valid-looking request built from its schemas and then broken one way (see
// arbitraries.ts), sent straight to the Worker (callWorker in test/helpers.ts) with a 5 s deadline.
import { env } from "cloudflare:test";
import fc from "fast-check";
import { z } from "zod";
import { messages } from "../../src/db/schema";
import { features, jobsOf } from "../../src/features";
import { toBase64Url } from "../../src/lib/encoding";
import { errorCatalog } from "../../src/lib/errors";
import { failureCallbackSchema } from "../../src/modules/jobs/routes";
import { signedUploadQuerySchema } from "../../src/modules/uploads/schemas";
import { clerkDeletedDataSchema, clerkUserDataSchema } from "../../src/modules/webhooks/schemas";
import { callWorker, clerkId, forgedToken, json, mintToken, testDb } from "../helpers";
import { pngBytes } from "../images";
import { signed as signedJob } from "../jobs";
import { signedWebhookBody } from "../webhooks";
import { randomIp, seedSession } from "../ws";
import {
  BODY_CLASSES,
  type BodyClass,
  badQueryValue,
  breakValue,
  CONTENT_TYPE_LIES,
  invalidJson,
  type JsonSchema,
  jsonText,
  junkCursor,
  junkSegment,
  noise,
  type Resolve,
  resolver,
  validValue,
} from "./arbitraries";
import { CANARY } from "./leaks";

/** What counts as a hang: no answer (or no socket reply) within this. */
export const DEADLINE_MS = 5_000;

// ---- the API document ------------------------------------------------------------------------

type Parameter = { name: string; in: "path" | "query" | "header"; required?: boolean; schema?: JsonSchema };
type DocOperation = { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema?: JsonSchema }> }; security?: unknown[] };
export type Document = { paths: Record<string, Record<string, DocOperation>>; components: { schemas: Record<string, JsonSchema> } };

export type Operation = {
  key: string;
  method: string;
  template: string;
  pathParams: Parameter[];
  queryParams: Parameter[];
  body: JsonSchema | undefined;
  secured: boolean;
  /** Every method the document lists for this path (a wrong method is one it does not). */
  methods: string[];
};

export function operationsOf(document: Document): Operation[] {
  return Object.entries(document.paths).flatMap(([template, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      key: `${method.toUpperCase()} ${template}`,
      method: method.toUpperCase(),
      template,
      pathParams: (op.parameters ?? []).filter((p) => p.in === "path"),
      queryParams: (op.parameters ?? []).filter((p) => p.in === "query"),
      body: op.requestBody?.content["application/json"]?.schema,
      secured: (op.security ?? []).length > 0,
      methods: Object.keys(methods).map((m) => m.toUpperCase()),
    })),
  );
}

// What the document does not say, the zod schemas do: job payloads, Clerk events, the upload URL's query.
export const jsonSchemaOf = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
const jobSchemas: Record<string, JsonSchema> = {
  ...Object.fromEntries(jobsOf(features).map((job) => [job.name, jsonSchemaOf(job.payload as z.ZodType)])),
  failed: jsonSchemaOf(failureCallbackSchema),
};
const clerkEventSchema: JsonSchema = {
  oneOf: [
    { type: "object", properties: { type: { enum: ["user.created", "user.updated"] }, object: { const: "event" }, data: jsonSchemaOf(clerkUserDataSchema) }, required: ["type", "data"] },
    { type: "object", properties: { type: { const: "user.deleted" }, object: { const: "event" }, data: jsonSchemaOf(clerkDeletedDataSchema) }, required: ["type", "data"] },
  ],
};
const uploadQuerySchema = jsonSchemaOf(signedUploadQuerySchema);

// ---- cases -----------------------------------------------------------------------------------

type Fixture = { fixture: "sessionId" | "messageId" | "uploadKey" };
type Segment = string | Fixture;

type Auth =
  | { kind: "owner" }
  | { kind: "none" }
  | { kind: "header"; value: string }
  | { kind: "forged" | "expired" | "tampered" | "other-party" }
  | { kind: "claims"; sub?: string; email?: string };

/** How a job or webhook delivery is signed; the `-id` ones sign correctly and break the delivery's id. */
type Signature = "valid" | "none" | "junk" | "alg-none" | "stale" | "wrong-key" | "other-url" | "other-body" | "junk-id" | "no-id" | "junk-timestamp";

type Body = { text: string } | { bytes: Uint8Array } | { stream: Uint8Array };

export type Case = {
  cls: string;
  /** Where the input is bad, in words (no token, key or signature). */
  what: string;
  method: string;
  path: Segment[];
  query: Array<[string, string]>;
  contentType?: string | null;
  body?: Body;
  auth: Auth;
  /** Jobs and webhooks: how the delivery is signed. */
  sign?: Signature;
  /** Uploads: the signed URL to get first, and what to change in its query. */
  upload?: { contentType: string; size: number; query: Array<{ name: string; value: string | null; add?: boolean }> };
  upgrade?: boolean;
};

const fixtureFor = (template: string, name: string): Fixture | undefined =>
  name === "messageId" ? { fixture: "messageId" } : name === "id" && template.startsWith("/api/v1/sessions/{id}") ? { fixture: "sessionId" } : undefined;

function pathArb(op: Operation, resolve: Resolve): fc.Arbitrary<Segment[]> {
  return fc.tuple(
    ...op.template.split("/").map((part): fc.Arbitrary<Segment> => {
      const name = /^\{(.+)\}$/.exec(part)?.[1];
      if (!name) return fc.constant(part);
      const fixture = fixtureFor(op.template, name);
      if (fixture) return fc.constant(fixture);
      const param = op.pathParams.find((p) => p.name === name);
      return validValue(param?.schema, resolve).map((value) => encodeURIComponent(String(value)));
    }),
  );
}

function queryArb(params: Parameter[], resolve: Resolve): fc.Arbitrary<Array<[string, string]>> {
  return fc
    .tuple(...params.map((p) => (p.required ? validValue(p.schema, resolve) : fc.option(validValue(p.schema, resolve), { nil: undefined })).map((v) => [p.name, v] as const)))
    .map((pairs) => pairs.filter(([, v]) => v !== undefined).map(([name, v]): [string, string] => [name, encodeURIComponent(String(v))]));
}

/** Authorization headers that are not the caller's valid token. */
const junkAuth: fc.Arbitrary<Auth> = fc.oneof(
  fc.constant<Auth>({ kind: "none" }),
  fc
    .constantFrom("Bearer", "Bearer ", "bearer", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Token abc", "Bearer null", "Bearer %00", `Bearer ${"x".repeat(10_000)}`, "Bearer \u00e9\u00ff", "Bearer  two  spaces", "eyJhbGciOiJub25lIn0")
    .map((value): Auth => ({ kind: "header", value })),
  fc.constantFrom<Auth>({ kind: "forged" }, { kind: "expired" }, { kind: "tampered" }, { kind: "other-party" }),
  // Validly signed, with claims no row can hold: NUL, an unpaired surrogate, ids and emails past an index's size.
  fc
    .record(
      {
        sub: fc.oneof(
          fc.constantFrom("", " ", `user_${CANARY}\u0000`, `user_${CANARY}\ud800`, "__proto__", "constructor", "../../etc/passwd", `user_${CANARY}\u202e`),
          fc.nat().map((seed) => `user_${noise(seed, 3_000)}`),
        ),
        email: fc.oneof(fc.constantFrom("", "not-an-email", "\u0000", `${CANARY}\udfff`, `${CANARY}.dup@example.com`), fc.nat().map((seed) => `${noise(seed, 3_000)}@example.com`)),
      },
      { requiredKeys: [] },
    )
    .map((claims): Auth => ({ kind: "claims", ...claims })),
);

/** Bodies over the JSON API's 64 KiB, the webhooks' 512 KiB and the jobs' 1 MiB; some without a Content-Length. */
const hugeBody = fc.tuple(fc.constantFrom(64 * 1024 + 1, 100_000, 600_000, 1024 * 1024 + 1, 2_000_000), fc.constantFrom("string", "array", "stream")).map(([size, shape]): Body => {
  if (shape === "array") return { text: `[${"1,".repeat(size / 2)}1]` };
  const text = `{"pad":"${CANARY}${"x".repeat(size)}"}`;
  return shape === "stream" ? { stream: new TextEncoder().encode(text) } : { text };
});

/** A JSON body whose first string holds bytes that are not UTF-8 (overlong, lone surrogate, 0xFF). */
function invalidUtf8(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const at = Math.max(0, text.indexOf('"') + 1);
  return new Uint8Array([...bytes.subarray(0, at), 0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80, ...bytes.subarray(at)]);
}

type Base = { path: Segment[]; query: Array<[string, string]>; body: unknown };
type Mutator = { cls: string; weight: number; arb: (base: Base) => fc.Arbitrary<Case> };

/** The case arbitrary of one operation: a valid-looking request from the document, broken one way. */
export function casesOf(op: Operation, resolve: Resolve): fc.Arbitrary<Case> {
  if (op.template === "/api/v1/uploads/{key}") return uploadCases();
  const isJob = op.template === "/jobs/{name}";
  const isWebhook = op.template === "/api/webhooks/clerk";
  const isSocket = op.method === "GET" && op.template.endsWith("/ws");
  const bodySchema = isWebhook ? clerkEventSchema : op.body;
  const canHaveBody = op.method !== "GET";

  const path = pathArb(op, resolve);
  const base: fc.Arbitrary<Base> = isJob
    ? fc.constantFrom(...Object.keys(jobSchemas)).chain((name) =>
        fc.record({ path: fc.constant(["", "jobs", name]), query: fc.constant([]), body: validJobBody(name, resolve) }),
      )
    : fc.record({ path, query: queryArb(op.queryParams, resolve), body: bodySchema ? validValue(bodySchema, resolve) : fc.constant(undefined) });
  const schemaOf = (b: Base) => (isJob ? jobSchemas[String(b.path[2])] : bodySchema);
  const signedKind: Signature | undefined = isJob || isWebhook ? "valid" : undefined;
  const make = (cls: string, b: Base, change: Partial<Case>): Case => ({
    cls,
    what: "",
    method: op.method,
    path: b.path,
    query: b.query,
    auth: op.secured ? { kind: "owner" } : { kind: "none" },
    ...(b.body === undefined ? {} : { body: { text: jsonText(b.body) }, contentType: "application/json" }),
    ...(signedKind ? { sign: signedKind } : {}),
    ...(isSocket ? { upgrade: false } : {}),
    ...change,
  });

  const mutators: Mutator[] = [];
  if (bodySchema) {
    // Edges and text Postgres refuses find the most; each class still gets its share.
    const weights: Record<BodyClass, number> = { boundary: 5, unicode: 4, "wrong-type": 3, "proto-keys": 3, "huge-string": 2, "deep-nesting": 2 };
    for (const cls of BODY_CLASSES) {
      mutators.push({
        cls,
        weight: weights[cls],
        arb: (b) =>
          breakValue(b.body, schemaOf(b), resolve, cls as BodyClass).chain(({ value, where }) =>
            (cls === "unicode" ? fc.integer({ min: 0, max: 3 }).map((n) => n === 0) : fc.constant(false)).map((bytes) => {
              const text = jsonText(value);
              return make(cls, b, { what: `${where}${bytes ? " (not UTF-8)" : ""}`, body: bytes ? { bytes: invalidUtf8(text) } : { text } });
            }),
          ),
      });
    }
  }
  if (canHaveBody) {
    mutators.push(
      {
        cls: "invalid-json",
        weight: 2,
        arb: (b) => invalidJson(jsonText(b.body ?? {})).map((text) => make("invalid-json", b, { what: "body", body: { text }, contentType: "application/json" })),
      },
      {
        cls: "content-type-lie",
        weight: 2,
        arb: (b) =>
          fc.constantFrom<string | null>(null, ...CONTENT_TYPE_LIES).map((contentType) =>
            make("content-type-lie", b, { what: `Content-Type ${JSON.stringify(contentType)}`, body: { text: jsonText(b.body ?? { [CANARY]: 1 }) }, contentType }),
          ),
      },
      { cls: "huge-body", weight: 2, arb: (b) => hugeBody.map((body) => make("huge-body", b, { what: "body", body, contentType: "application/json" })) },
    );
  }
  mutators.push({
    cls: "junk-path",
    weight: op.pathParams.length > 0 ? 3 : 1,
    arb: (b) => {
      const params = b.path.flatMap((segment, i) => (i > 0 && (typeof segment !== "string" || op.template.split("/")[i]?.startsWith("{")) ? [i] : []));
      return fc.tuple(junkSegment, fc.constantFrom(...(params.length > 0 ? params : [b.path.length - 1])), fc.constantFrom("replace", "append", "double-slash", "trailing-slash")).map(([junk, at, how]) => {
        const path = [...b.path];
        if (how === "replace") path[at] = junk;
        if (how === "append") path.splice(at + 1, 0, junk);
        if (how === "double-slash") path.splice(at, 0, "");
        if (how === "trailing-slash") path.push("");
        return make("junk-path", b, { what: `path segment ${at} (${how}) ${junk.slice(0, 40)}`, path });
      });
    },
  });
  mutators.push({
    cls: "junk-query",
    weight: op.queryParams.length > 0 || isSocket ? 4 : 1,
    arb: (b) => {
      const named = op.queryParams.map((p) =>
        (p.name === "cursor" ? junkCursor : badQueryValue(p.schema, resolve)).map((value): Array<[string, string]> => [...b.query.filter(([n]) => n !== p.name), [p.name, value]]),
      );
      const extra = fc.constantFrom<Array<[string, string]>>(
        [["__proto__", "x"]],
        [["constructor[prototype][polluted]", CANARY]],
        [["__proto__[polluted]", "1"]],
        [["limit", "1"], ["limit", "100"]],
        [["limit[]", "1"]],
        [[encodeURIComponent(`${CANARY}\u0000`), "x".repeat(16_000)]],
        [["", ""]],
      );
      return fc
        .oneof(...named, extra.map((pairs) => [...b.query, ...pairs]))
        .chain((query) => (isSocket ? fc.boolean() : fc.constant(false)).map((upgrade) => make("junk-query", b, { what: `query ${query.map(([n]) => n).join(",").slice(0, 60)}`, query, upgrade })));
    },
  });
  if (op.secured || isSocket) {
    mutators.push({
      cls: "junk-auth",
      weight: 2,
      arb: (b) => fc.tuple(junkAuth, fc.boolean()).map(([auth, upgrade]) => make("junk-auth", b, { what: `Authorization ${auth.kind}`, auth, upgrade: isSocket ? upgrade : undefined })),
    });
  }
  if (isJob || isWebhook) {
    mutators.push({
      cls: "bad-signature",
      weight: 4,
      arb: (b) =>
        fc
          .tuple(fc.constantFrom<Signature>("none", "junk", "alg-none", "stale", "wrong-key", "other-url", "other-body", "junk-id", "no-id", "junk-timestamp"), fc.boolean())
          .chain(([sign, junkBody]) =>
            (junkBody && schemaOf(b) ? breakValue(b.body, schemaOf(b), resolve, "wrong-type").map(({ value }) => jsonText(value)) : fc.constant(jsonText(b.body))).map((text) =>
              make("bad-signature", b, { what: `signature ${sign}`, sign, body: { text } }),
            ),
          ),
    });
  }
  if (isSocket) {
    mutators.push({ cls: "plain-request", weight: 1, arb: (b) => fc.constant(make("plain-request", b, { what: "no Upgrade header", upgrade: false, auth: { kind: "owner" } })) });
  }
  mutators.push({
    cls: "wrong-method",
    weight: 1,
    arb: (b) => {
      const others = ["GET", "POST", "PUT", "PATCH", "DELETE", "PROPFIND"].filter((m) => !op.methods.includes(m));
      return fc.constantFrom(...others).map((method) =>
        make("wrong-method", b, { what: method, method, ...(method === "GET" ? { body: undefined, contentType: undefined } : {}) }),
      );
    },
  });
  if (!canHaveBody) for (const m of mutators) m.arb = ((arb) => (b: Base) => arb(b).map((c) => (c.method === "GET" ? { ...c, body: undefined, contentType: undefined } : c)))(m.arb);

  return base.chain((b) => fc.oneof(...mutators.map((m) => ({ weight: m.weight, arbitrary: m.arb(b) }))));
}

function validJobBody(name: string, resolve: Resolve): fc.Arbitrary<unknown> {
  if (name !== "failed") return validValue(jobSchemas[name], resolve);
  // A failure callback carries a source delivery: its URL and its body (base64), both of a real job.
  const sources = Object.keys(jobSchemas).filter((job) => job !== "failed");
  return fc.constantFrom(...sources).chain((source) =>
    fc.record({
      status: fc.constantFrom(500, 503, 489),
      retried: fc.nat({ max: 3 }),
      sourceMessageId: fc.constant(`msg_${CANARY}`),
      url: fc.constant(`${env.PUBLIC_BASE_URL}/jobs/${source}`),
      sourceBody: validValue(jobSchemas[source], resolve).map((payload) => btoa(JSON.stringify(payload))),
    }),
  );
}

/** `PUT /uploads/{key}`: a fresh signed URL for each case, then its key, query, type or bytes broken. */
function uploadCases(): fc.Arbitrary<Case> {
  const resolve = resolver();
  const grant = fc.record({ contentType: fc.constantFrom("image/png", "image/jpeg", "image/webp", "image/heic"), size: fc.integer({ min: 64, max: 4096 }) });
  const make = (cls: string, g: { contentType: string; size: number }, change: Partial<Case>): Case => ({
    cls,
    what: "",
    method: "PUT",
    path: ["", "api", "v1", "uploads", { fixture: "uploadKey" }],
    query: [],
    auth: { kind: "none" },
    contentType: g.contentType,
    body: { bytes: pngBytes(g.size) },
    upload: { ...g, query: [] },
    ...change,
  });
  const params = Object.keys(uploadQuerySchema.properties ?? {});
  return grant.chain((g) =>
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc
          .tuple(fc.constantFrom(...params), fc.oneof(badQueryValue(undefined, resolve), fc.constant(null)), fc.boolean())
          .chain(([name, value, add]) =>
            (name === "size" || name === "expires" ? fc.oneof(fc.constant(value), badQueryValue(uploadQuerySchema.properties?.[name], resolve)) : fc.constant(value)).map((v) =>
              make("junk-query", g, { what: `${name}=${v === null ? "(missing)" : v.slice(0, 30)}${add ? " (twice)" : ""}`, upload: { ...g, query: [{ name, value: v, add: add && v !== null }] } }),
            ),
          ),
      },
      {
        weight: 2,
        arbitrary: fc
          .oneof(junkSegment.map((junk) => [junk]), fc.constantFrom(["u", "x", "y.png"], ["u", "..", "..", "x.png"], ["u%2Fx%2Fy.png"], ["u", "user_1", "AAAAAAAAAAAAAAAAAAAAAA.png"], [`${CANARY}.png`]))
          .map((segments) => make("junk-path", g, { what: `key ${segments.join("/").slice(0, 40)}`, path: ["", "api", "v1", "uploads", ...segments] })),
      },
      {
        weight: 2,
        arbitrary: fc
          .constantFrom<string | null>(null, ...CONTENT_TYPE_LIES, "image/png", "image/jpeg", "image/gif", "IMAGE/PNG")
          .map((contentType) => make("content-type-lie", g, { what: `Content-Type ${JSON.stringify(contentType)}`, contentType })),
      },
      {
        weight: 3,
        arbitrary: fc
          .constantFrom<[string, () => Body]>(
            ["one byte short", () => ({ bytes: pngBytes(g.size).subarray(1) })],
            ["one byte long", () => ({ bytes: pngBytes(g.size + 1) })],
            ["empty", () => ({ bytes: new Uint8Array() })],
            ["not an image", () => ({ bytes: new TextEncoder().encode(`${CANARY}`.padEnd(g.size, "x")) })],
            ["no Content-Length", () => ({ stream: pngBytes(g.size) })],
            ["10 MiB too many", () => ({ stream: pngBytes(10 * 1024 * 1024 + 1) })],
            ["JSON", () => ({ text: `{"${CANARY}":1}`.padEnd(g.size, " ") })],
          )
          .map(([what, body]) => make("huge-body", g, { what, body: body(), cls: what.includes("MiB") || what.includes("long") ? "huge-body" : "junk-body" })),
      },
      { weight: 1, arbitrary: junkAuth.map((auth) => make("junk-auth", g, { what: `Authorization ${auth.kind}`, auth })) },
      { weight: 1, arbitrary: fc.constantFrom("GET", "POST", "PATCH", "DELETE").map((method) => make("wrong-method", g, { what: method, method, ...(method === "GET" ? { body: undefined } : {}) })) },
    ),
  );
}

// ---- users and what they own -------------------------------------------------------------------

export type Owner = { token: string; userId: string; sessionId: string; messageId: string };

/** A user with a ready text session of two messages, written straight to the database (no request to count). */
export async function provision(): Promise<Owner> {
  const { userId, sessionId, token } = await seedSession();
  const [first] = await testDb()
    .insert(messages)
    .values([
      { sessionId, sender: "match", text: `${CANARY} loved your hiking photos`, position: 0, source: "manual" },
      { sessionId, sender: "user", text: `${CANARY} thanks!`, position: 1, source: "manual" },
    ])
    .returning({ id: messages.id });
  return { token, userId, sessionId, messageId: first!.id };
}

/**
 * One user at a time per operation: a rate limit, a deleted account or a deleted session would
 * otherwise keep later cases from the validators they aim at. The user is replaced then.
 */
export function lane() {
  let current: Promise<Owner> | undefined;
  let provisioned = 0;
  return {
    user: () => (current ??= (provisioned++, provision())),
    replace: () => {
      current = undefined;
    },
    get provisioned() {
      return provisioned;
    },
  };
}
export type Lane = ReturnType<typeof lane>;

// ---- sending ---------------------------------------------------------------------------------

export type Outcome = { status: number; code?: string; problem?: string; ms: number };

/** Resolves with the promise's value, or "hang" once `ms` pass. */
function deadline<T>(promise: Promise<T>, ms = DEADLINE_MS): Promise<T | "hang"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([promise.finally(() => clearTimeout(timer)), new Promise<"hang">((resolve) => (timer = setTimeout(() => resolve("hang"), ms)))]);
}

async function authorization(auth: Auth, owner: Owner): Promise<string | undefined> {
  switch (auth.kind) {
    case "owner":
      return `Bearer ${owner.token}`;
    case "none":
      return undefined;
    case "header":
      return auth.value;
    case "forged":
      return `Bearer ${await forgedToken()}`;
    case "expired":
      return `Bearer ${await mintToken(clerkId(), { nowSeconds: Math.floor(Date.now() / 1000) - 7200, ttlSeconds: 60 })}`;
    case "tampered":
      return `Bearer ${owner.token.slice(0, -4)}${owner.token.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    case "other-party":
      return `Bearer ${await mintToken(clerkId(), { azp: "https://evil.example" })}`;
    case "claims":
      return `Bearer ${await mintToken(auth.sub ?? clerkId(), auth.email === undefined ? {} : { email: auth.email })}`;
  }
}

/** An id of 3,000 random characters: past what a btree index row holds, unless the id is refused first. */
const longRandomId = () => toBase64Url(crypto.getRandomValues(new Uint8Array(2_250)));

async function signatureHeaders(sign: Signature, path: string, text: string, isJob: boolean): Promise<Record<string, string>> {
  if (sign === "none") return {};
  if (isJob) {
    const url = `${env.PUBLIC_BASE_URL}${path}`;
    const ids = { "junk-id": longRandomId(), "no-id": undefined } as Record<string, string | undefined>;
    const messageId = sign in ids ? ids[sign] : `msg_${crypto.randomUUID()}`;
    const signature = await (() => {
      switch (sign) {
        case "stale":
          return signedJob({ url, body: text, nowSeconds: Math.floor(Date.now() / 1000) - 3600 });
        case "wrong-key":
          return signedJob({ url, body: text, key: `${CANARY}${"k".repeat(32)}` });
        case "other-url":
          return signedJob({ url: `${env.PUBLIC_BASE_URL}/jobs/other`, body: text });
        case "other-body":
          return signedJob({ url, body: `${text} ` });
        case "alg-none":
          return Promise.resolve("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJVcHN0YXNoIn0.");
        case "junk":
        case "junk-timestamp":
          return Promise.resolve("junk");
        default:
          return signedJob({ url, body: text });
      }
    })();
    return { "Upstash-Signature": signature, "Upstash-Retried": "0", ...(messageId === undefined ? {} : { "Upstash-Message-Id": messageId }) };
  }
  const secret = sign === "wrong-key" ? `whsec_${btoa(`${CANARY}${"k".repeat(24)}`)}` : undefined;
  const { init } = signedWebhookBody(sign === "other-body" ? `${text} ` : text, {
    ...(secret ? { secret } : {}),
    ...(sign === "stale" ? { timestamp: new Date(Date.now() - 3600_000) } : {}),
    ...(sign === "junk-id" ? { svixId: longRandomId() } : {}),
  });
  const headers: Record<string, string> = { ...init.headers };
  if (sign === "junk") headers["svix-signature"] = "v1,AAAA";
  if (sign === "alg-none") headers["svix-signature"] = "v0,bm9uZQ==";
  if (sign === "junk-timestamp") headers["svix-timestamp"] = "1e309";
  if (sign === "other-url" || sign === "no-id") delete headers["svix-id"];
  delete headers["Content-Type"];
  return headers;
}

/** A signed upload URL of the case's user, for the case's type and size (a new user when the quota is used up). */
async function uploadGrant(lane: Lane, request: { contentType: string; size: number }): Promise<{ key: string; params: URLSearchParams }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const owner = await lane.user();
    const answer = await json<{ uploadUrl: string; key: string }>(
      await callWorker(`/api/v1/sessions/upload-url?contentType=${encodeURIComponent(request.contentType)}&size=${request.size}`, { headers: { Authorization: `Bearer ${owner.token}` } }),
    );
    if (answer.success) return { key: answer.data.key, params: new URL(answer.data.uploadUrl).searchParams };
    lane.replace();
  }
  throw new Error("no upload URL after 3 users");
}

function bodyInit(body: Body | undefined): BodyInit | undefined {
  if (!body) return undefined;
  if ("text" in body) return body.text;
  if ("bytes" in body) return body.bytes;
  const bytes = body.stream;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024));
      controller.close();
    },
  });
}

/** Whether a response is the envelope SPEC §4 promises: a catalog code of this status on an error. */
function envelopeProblem(status: number, text: string): { code?: string; problem?: string } {
  let body: { success?: unknown; error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return { problem: `not JSON: ${text.slice(0, 80)}` };
  }
  if (status < 400) return body.success === true ? {} : { problem: "no success envelope" };
  const code = body.error?.code;
  if (body.success !== false || typeof code !== "string" || typeof body.error?.message !== "string") return { problem: `no error envelope: ${text.slice(0, 80)}` };
  const entry: { status?: number } | undefined = (errorCatalog as Record<string, { status?: number }>)[code];
  if (entry?.status !== status) return { code, problem: `${code} is not the catalog's code for HTTP ${status}` };
  return { code };
}

export async function send(c: Case, lane: Lane): Promise<Outcome> {
  const owner = await lane.user();
  const grant = c.upload ? await uploadGrant(lane, c.upload) : undefined;
  const path = c.path
    .map((segment) => (typeof segment === "string" ? segment : segment.fixture === "uploadKey" ? grant!.key : owner[segment.fixture]))
    .join("/");
  const query: Array<[string, string]> = [...c.query];
  if (grant) {
    const edits = new Map(c.upload!.query.filter((edit) => !edit.add).map((edit) => [edit.name, edit.value]));
    for (const [name, value] of grant.params) {
      const edited = edits.has(name) ? edits.get(name) : encodeURIComponent(value);
      if (edited !== null && edited !== undefined) query.push([name, edited]);
    }
    for (const edit of c.upload!.query.filter((e) => e.add && e.value !== null)) query.push([edit.name, edit.value!]);
  }
  const search = query.length > 0 ? `?${query.map(([name, value]) => `${name}=${value}`).join("&")}` : "";
  // Each from an address of its own, so the per-IP limits meet no case.
  const headers: Record<string, string> = { "CF-Connecting-IP": randomIp() };
  const auth = await authorization(c.auth, owner);
  if (auth !== undefined) headers.Authorization = auth;
  if (c.contentType) headers["Content-Type"] = c.contentType;
  if (c.upgrade) headers.Upgrade = "websocket";
  if (c.sign) {
    const text = c.body && "text" in c.body ? c.body.text : "";
    Object.assign(headers, await signatureHeaders(c.sign, path, text, path.startsWith("/jobs/")));
  }
  const started = performance.now();
  const answer = await deadline(
    (async () => {
      const response = await callWorker(`${path}${search}`, { method: c.method, headers, body: bodyInit(c.body) });
      if (response.webSocket) {
        // An upgrade the protocol allows (a first-frame socket, or the owner's): done with it.
        response.webSocket.accept();
        response.webSocket.close(1000, "bye");
        return { status: response.status, text: "" };
      }
      return { status: response.status, text: await response.text() };
    })(),
  );
  const ms = performance.now() - started;
  if (answer === "hang") return { status: 0, problem: "hang", ms };
  if (answer.status === 101) return { status: 101, ms };
  return { status: answer.status, ms, ...envelopeProblem(answer.status, answer.text) };
}
