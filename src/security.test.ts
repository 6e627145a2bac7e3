import { asc } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { call, callAs, clearBucket, clerkId, forgedToken, json, mintToken, resetDatabase, signedInUser, testDb, uploadImage } from "../test/helpers";
import { createApp } from "./app";
import { magicOpeners, messages, openerGenerations, pushTokens, sessionImages, sessions, suggestionGenerations, suggestions } from "./db/schema";
import type { ErrorBody } from "./lib/envelope";
import type { ErrorCode } from "./lib/errors";

// The routes come from the app itself — its API document, and for the completeness check its
// router — so a new authenticated route gets every case below without this file changing.
// What the file does hold is how to make each kind of resource a route can name: a route
// naming a kind it does not know fails loudly, asking for one more line here.

type Operation = {
  security?: Array<Record<string, unknown>>;
  requestBody?: { content: Record<string, { schema?: { $ref?: string } }> };
  responses: Record<string, { description?: string }>;
};
type Route = { name: string; method: string; path: string; operation: Operation };

const document = createApp().getOpenAPI31Document({ openapi: "3.1.0", info: { title: "Charisma API", version: "test" } }) as unknown as {
  paths: Record<string, Record<string, Operation>>;
};
const documented: Route[] = Object.entries(document.paths).flatMap(([path, operations]) =>
  Object.entries(operations).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, operation })),
);
const authenticated = documented.filter((route) => route.operation.security?.some((requirement) => "bearerAuth" in requirement));

/** One resource of each kind a route can name, all belonging to one user. */
type Owned = { session: string; message: string; suggestion: string; upload: string; pushToken: string; opener: string; openerGeneration: string };
type Kind = keyof Owned;

/** A path parameter, by the collection it follows, names this kind of resource. */
const pathParameters: Record<string, Kind> = {
  "sessions/{id}": "session",
  "messages/{messageId}": "message",
  "suggestions/{id}": "suggestion",
  "push-tokens/{token}": "pushToken",
  "magic-openers/{id}": "opener",
  "generations/{id}": "openerGeneration",
};

/** What a route answers for a resource of this kind that is not the caller's. */
const notFoundCodes: Record<Kind, ErrorCode> = {
  session: "SESSION_NOT_FOUND",
  message: "MESSAGE_NOT_FOUND",
  suggestion: "SUGGESTION_NOT_FOUND",
  upload: "UPLOAD_NOT_FOUND",
  pushToken: "NOT_FOUND",
  opener: "OPENER_NOT_FOUND",
  openerGeneration: "NOT_FOUND",
};

/** A valid body for each named request schema; `names` when the body itself points at a resource. */
const validBodies: Record<string, { names?: Kind; make: (owned: Owned) => unknown }> = {
  CreateSession: { names: "upload", make: (owned) => ({ type: "screenshot", imageKeys: [owned.upload] }) },
  ConfirmOcr: { make: () => ({}) },
  AddMessage: { make: () => ({ sender: "user", text: "one more" }) },
  UpdateMessage: { make: () => ({ text: "changed" }) },
  GenerateSuggestions: { make: () => ({ count: 1 }) },
  SuggestionFeedback: { make: () => ({ feedback: "liked" }) },
  UpdateUser: { make: () => ({ firstName: "Sam" }) },
  Onboarding: { make: () => ({ gender: "female", lookingFor: "men", ageRange: "25-34", datingGoal: "relationship" }) },
  RegisterPushToken: { make: () => ({ token: newPushToken(), platform: "ios" }) },
  GenerateOpeners: { names: "upload", make: (owned) => ({ profile: { bio: "Climber", photoKey: owned.upload } }) },
  ToggleOpener: { make: () => ({ liked: true }) },
};

const newPushToken = () => `ExponentPushToken[${crypto.randomUUID().replaceAll("-", "")}]`;

function bodyOf(route: Route) {
  const json = route.operation.requestBody?.content["application/json"];
  if (!json) return undefined;
  const name = json.schema?.$ref?.split("/").at(-1);
  if (!name) throw new Error(`${route.name}: its JSON body has no named schema; name it with .openapi("Name")`);
  const body = validBodies[name];
  if (!body) throw new Error(`${route.name}: no valid ${name} body; add one to validBodies in src/security.test.ts`);
  return body;
}

function pathKindsOf(route: Route): Kind[] {
  return [...route.path.matchAll(/\{\w+\}/g)].map((match) => {
    const key = `${route.path.slice(0, match.index).split("/").at(-2)}/${match[0]}`;
    const kind = pathParameters[key];
    if (!kind) throw new Error(`${route.name}: no fixture for the path parameter ${key}; add it to pathParameters in src/security.test.ts`);
    return kind;
  });
}

/** The resources a request to the route names: its path parameters in order, then its body's. */
function pointersOf(route: Route): Kind[] {
  const names = bodyOf(route)?.names;
  return names ? [...pathKindsOf(route), names] : pathKindsOf(route);
}

/** The route's request, its n-th named resource (see pointersOf) taken from `resourcesOf(n)`. */
function requestFor(route: Route, resourcesOf: (pointer: number) => Owned) {
  const kinds = pathKindsOf(route);
  let pointer = 0;
  const path = route.path.replace(/\{\w+\}/g, () => encodeURIComponent(resourcesOf(pointer)[kinds[pointer++]!]));
  return { method: route.method, path, json: bodyOf(route)?.make(resourcesOf(kinds.length)) };
}

const documentedNotFound = (route: Route) => route.operation.responses["404"]?.description?.split(" | ") ?? [];

async function seedUser(): Promise<{ token: string; owned: Owned }> {
  const { token, userId } = await signedInUser();
  const created = await json<{ id: string; messages: Array<{ id: string }> }>(
    await callAs(token, "/api/v1/sessions", {
      method: "POST",
      json: { type: "text", messages: [{ sender: "match", text: "hi" }, { sender: "user", text: "hello" }] },
    }),
  );
  if (!created.success) throw new Error(`session not created: ${JSON.stringify(created)}`);
  const db = testDb();
  const [generation] = await db.insert(suggestionGenerations).values({ sessionId: created.data.id, count: 1, status: "completed" }).returning();
  const [suggestion] = await db.insert(suggestions).values({ generationId: generation!.id, sessionId: created.data.id, rank: 0, text: "coffee?" }).returning();
  const [openerGeneration] = await db.insert(openerGenerations).values({ userId, profile: { bio: "Climber" }, count: 1, status: "completed" }).returning();
  const [opener] = await db.insert(magicOpeners).values({ userId, generationId: openerGeneration!.id, profile: { bio: "Climber" }, text: "Best crag nearby?" }).returning();
  const pushToken = newPushToken();
  const registered = await callAs(token, "/api/v1/users/me/push-tokens", { method: "POST", json: { token: pushToken, platform: "ios" } });
  if (registered.status !== 200) throw new Error(`push token not registered: ${registered.status}`);
  return {
    token,
    owned: {
      session: created.data.id,
      message: created.data.messages[0]!.id,
      suggestion: suggestion!.id,
      upload: await uploadImage(token),
      pushToken,
      opener: opener!.id,
      openerGeneration: openerGeneration!.id,
    },
  };
}

/** Every row a cross-user request could touch. */
async function rows() {
  const db = testDb();
  return Promise.all([
    db.select().from(sessions).orderBy(asc(sessions.id)),
    db.select().from(messages).orderBy(asc(messages.id)),
    db.select().from(sessionImages).orderBy(asc(sessionImages.id)),
    db.select().from(suggestionGenerations).orderBy(asc(suggestionGenerations.id)),
    db.select().from(suggestions).orderBy(asc(suggestions.id)),
    db.select().from(pushTokens).orderBy(asc(pushTokens.id)),
    db.select().from(openerGenerations).orderBy(asc(openerGenerations.id)),
    db.select().from(magicOpeners).orderBy(asc(magicOpeners.id)),
  ]);
}

describe("every route", () => {
  it("the app serves is in its API document as authenticated, or else answers without a bearer token", async () => {
    const template = (path: string) => path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");
    const served = [...new Set(createApp().routes.filter((route) => route.method !== "ALL").map((route) => `${route.method} ${template(route.path)}`))];
    const guarded = authenticated.map((route) => route.name);
    expect(served).toEqual(expect.arrayContaining(guarded));
    for (const name of served.filter((entry) => !guarded.includes(entry))) {
      const [method, path] = name.split(" ") as [string, string];
      const response = await call(path.replace(/\{\w+\}/g, "x"), { method });
      const text = await response.text();
      const code = response.status === 401 ? (JSON.parse(text) as ErrorBody).error.code : undefined;
      expect(["UNAUTHORIZED", "TOKEN_EXPIRED"], `${name} wants a bearer token but its document does not say so`).not.toContain(code);
    }
  });
});

for (const route of authenticated) {
  describe(route.name, () => {
    let owner: Awaited<ReturnType<typeof seedUser>>;
    let stranger: Awaited<ReturnType<typeof seedUser>>;
    beforeAll(async () => {
      await resetDatabase();
      await clearBucket();
      owner = await seedUser();
      stranger = await seedUser();
    });

    it("answers 401 without a valid bearer token", async () => {
      const now = Math.floor(Date.now() / 1000);
      const credentials: Array<[string, string | undefined, ErrorCode]> = [
        ["no token", undefined, "UNAUTHORIZED"],
        ["an expired token", await mintToken(clerkId(), { nowSeconds: now - 600, ttlSeconds: 60 }), "TOKEN_EXPIRED"],
        ["a token signed by another key", await forgedToken(), "UNAUTHORIZED"],
        ["a token for another party", await mintToken(clerkId(), { azp: "https://elsewhere.example" }), "UNAUTHORIZED"],
      ];
      const request = requestFor(route, () => owner.owned);
      const withoutToken = request.json === undefined ? {} : { headers: { "Content-Type": "application/json" }, body: JSON.stringify(request.json) };
      for (const [what, token, code] of credentials) {
        const response = token
          ? await callAs(token, request.path, { method: request.method, json: request.json })
          : await call(request.path, { method: request.method, ...withoutToken });
        expect(response.status, what).toBe(401);
        expect(await json(response), what).toMatchObject({ success: false, error: { code } });
      }
    });

    if (route.operation.requestBody?.content["application/json"]) {
      it("answers 400 to a body that is not JSON, or not the right JSON", async () => {
        // The caller's own resources, so nothing but the body can be wrong.
        const { path } = requestFor(route, () => stranger.owned);
        const junk: Array<[string, string, ErrorCode]> = [
          ["malformed JSON", '{"oops', "INVALID_JSON"],
          ["JSON of the wrong shape", "[1, 2, 3]", "VALIDATION_ERROR"],
        ];
        for (const [what, body, code] of junk) {
          const refused = await call(path, { method: route.method, headers: { Authorization: `Bearer ${stranger.token}`, "Content-Type": "application/json" }, body });
          expect(refused.status, what).toBe(400);
          const details = code === "VALIDATION_ERROR" ? { details: { target: "json" } } : {};
          expect(await json(refused), what).toMatchObject({ success: false, error: { code, ...details } });
        }
      });
    }

    const pointers = pointersOf(route);
    if (pointers.length > 0) {
      it("answers another user's resources with its own 404, and changes nothing", async () => {
        // Every named resource the owner's (the outermost one answers), then, when there are
        // several, one at a time among the caller's own.
        const all = pointers.map((_, pointer) => pointer);
        const victimSets = pointers.length > 1 ? [all, ...all.map((pointer) => [pointer])] : [all];
        const before = await rows();
        for (const victims of victimSets) {
          const code = notFoundCodes[pointers[victims[0]!]!];
          const request = requestFor(route, (pointer) => (victims.includes(pointer) ? owner.owned : stranger.owned));
          const response = await callAs(stranger.token, request.path, { method: request.method, json: request.json });
          const body = await json(response);
          expect({ status: response.status, body }, request.path).toMatchObject({ status: 404, body: { success: false, error: { code } } });
          expect(documentedNotFound(route), `${route.name} documents ${code}`).toContain(code);
        }
        expect(await rows()).toEqual(before);
      });
    }
  });
}
