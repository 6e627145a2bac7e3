import { asc } from "drizzle-orm";
import { magicOpeners, messages, openerGenerations, pushTokens, sessionImages, sessions, suggestionGenerations, suggestions } from "../src/db/schema";
import type { ErrorCode } from "../src/lib/errors";
import { callAs, json, signedInUser, testDb, uploadImage } from "./helpers";
import { CANARY } from "./resilience/leaks";

// The API's routes as its OpenAPI document lists them, and how to aim a request at each: one
// resource of every kind a route can name, a valid body for every request schema. Tests that go
// over every route (src/security.test.ts, the resilience suite's attacks) share it, so a new
// route is covered by all of them — and a route naming a kind this file does not know fails
// loudly, asking for one more line here. Every text it sends carries CANARY, so that the
// resilience suite's log scan finds any of it that reaches a log line.

export type Operation = {
  security?: Array<Record<string, unknown>>;
  parameters?: Array<{ name: string; in: string; schema?: { enum?: string[] } }>;
  requestBody?: { content: Record<string, { schema?: { $ref?: string } }> };
  responses: Record<string, { description?: string }>;
};
export type Route = { name: string; method: string; path: string; operation: Operation };
export type ApiDocument = { paths: Record<string, Record<string, Operation>> };

/** Every operation of the document, by `METHOD /path`. */
export function documentedRoutes(document: ApiDocument): Route[] {
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, operation })),
  );
}

/** The operations that want a bearer token. */
export const isAuthenticated = (route: Route) => route.operation.security?.some((requirement) => "bearerAuth" in requirement) ?? false;

/** One resource of each kind a route can name, all belonging to one user. */
export type Owned = { session: string; message: string; suggestion: string; upload: string; pushToken: string; opener: string; openerGeneration: string };
export type Kind = keyof Owned;

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
export const notFoundCodes: Record<Kind, ErrorCode> = {
  session: "SESSION_NOT_FOUND",
  message: "MESSAGE_NOT_FOUND",
  suggestion: "SUGGESTION_NOT_FOUND",
  upload: "UPLOAD_NOT_FOUND",
  pushToken: "NOT_FOUND",
  opener: "OPENER_NOT_FOUND",
  openerGeneration: "NOT_FOUND",
};

export const newPushToken = () => `ExponentPushToken[${crypto.randomUUID().replaceAll("-", "")}]`;

/** A valid body for each named request schema; `names` when the body itself points at a resource. */
const validBodies: Record<string, { names?: Kind; make: (owned: Owned) => unknown }> = {
  CreateSession: { names: "upload", make: (owned) => ({ type: "screenshot", imageKeys: [owned.upload] }) },
  ConfirmOcr: { make: () => ({}) },
  AddMessage: { make: () => ({ sender: "user", text: `one more ${CANARY}` }) },
  UpdateMessage: { make: () => ({ text: `changed ${CANARY}` }) },
  GenerateSuggestions: { make: () => ({ count: 1 }) },
  SuggestionFeedback: { make: () => ({ feedback: "liked" }) },
  UpdateUser: { make: () => ({ firstName: "Sam" }) },
  Onboarding: { make: () => ({ gender: "female", lookingFor: "men", ageRange: "25-34", datingGoal: "relationship" }) },
  RegisterPushToken: { make: () => ({ token: newPushToken(), platform: "ios" }) },
  GenerateOpeners: { names: "upload", make: (owned) => ({ profile: { bio: `Climber ${CANARY}`, photoKey: owned.upload } }) },
  ToggleOpener: { make: () => ({ liked: true }) },
};

function bodyOf(route: Route) {
  const json = route.operation.requestBody?.content["application/json"];
  if (!json) return undefined;
  const name = json.schema?.$ref?.split("/").at(-1);
  if (!name) throw new Error(`${route.name}: its JSON body has no named schema; name it with .openapi("Name")`);
  const body = validBodies[name];
  if (!body) throw new Error(`${route.name}: no valid ${name} body; add one to validBodies in test/routes.ts`);
  return body;
}

export function pathKindsOf(route: Route): Kind[] {
  return [...route.path.matchAll(/\{\w+\}/g)].map((match) => {
    const key = `${route.path.slice(0, match.index).split("/").at(-2)}/${match[0]}`;
    const kind = pathParameters[key];
    if (!kind) throw new Error(`${route.name}: no fixture for the path parameter ${key}; add it to pathParameters in test/routes.ts`);
    return kind;
  });
}

/** The resources a request to the route names: its path parameters in order, then its body's. */
export function pointersOf(route: Route): Kind[] {
  const names = bodyOf(route)?.names;
  return names ? [...pathKindsOf(route), names] : pathKindsOf(route);
}

/** The route's request, its n-th named resource (see pointersOf) taken from `resourcesOf(n)`. */
export function requestFor(route: Route, resourcesOf: (pointer: number) => Owned) {
  const kinds = pathKindsOf(route);
  let pointer = 0;
  const path = route.path.replace(/\{\w+\}/g, () => encodeURIComponent(resourcesOf(pointer)[kinds[pointer++]!]));
  return { method: route.method, path, json: bodyOf(route)?.make(resourcesOf(kinds.length)) };
}

/** The error codes a route documents for its 404. */
export const documentedNotFound = (route: Route) => route.operation.responses["404"]?.description?.split(" | ") ?? [];

/**
 * A signed-in user holding one resource of every kind: a text session with two messages, a
 * finished generation with a suggestion, an opener generation with an opener, an upload not yet
 * in a session, a push token.
 */
export async function seedUser(): Promise<{ token: string; userId: string; owned: Owned }> {
  const { token, userId } = await signedInUser();
  const created = await json<{ id: string; messages: Array<{ id: string }> }>(
    await callAs(token, "/api/v1/sessions", {
      method: "POST",
      json: { type: "text", messages: [{ sender: "match", text: `hi ${CANARY}` }, { sender: "user", text: `hello ${CANARY}` }] },
    }),
  );
  if (!created.success) throw new Error(`session not created: ${JSON.stringify(created)}`);
  const db = testDb();
  const [generation] = await db.insert(suggestionGenerations).values({ sessionId: created.data.id, count: 1, status: "completed" }).returning();
  const [suggestion] = await db.insert(suggestions).values({ generationId: generation!.id, sessionId: created.data.id, rank: 0, text: `coffee? ${CANARY}` }).returning();
  const [openerGeneration] = await db.insert(openerGenerations).values({ userId, profile: { bio: `Climber ${CANARY}` }, count: 1, status: "completed" }).returning();
  const [opener] = await db.insert(magicOpeners).values({ userId, generationId: openerGeneration!.id, profile: { bio: `Climber ${CANARY}` }, text: `Best crag nearby? ${CANARY}` }).returning();
  const pushToken = newPushToken();
  const registered = await callAs(token, "/api/v1/users/me/push-tokens", { method: "POST", json: { token: pushToken, platform: "ios" } });
  if (registered.status !== 200) throw new Error(`push token not registered: ${registered.status}`);
  return {
    token,
    userId,
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
export async function rows() {
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
