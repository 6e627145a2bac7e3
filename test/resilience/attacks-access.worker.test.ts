import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { suggestionGenerations, users } from "../../src/db/schema";
import { toBase64Url } from "../../src/lib/encoding";
import type { RoomAddress } from "../../src/realtime/protocol";
import { roomStub } from "../../src/realtime/rooms";
import { call, callAs, clearBucket, clerkId, forgedToken, json, mintToken, resetDatabase, testDb } from "../helpers";
import {
  type ApiDocument,
  documentedNotFound,
  documentedRoutes,
  isAuthenticated,
  newPushToken,
  notFoundCodes,
  type Owned,
  pathKindsOf,
  pointersOf,
  requestFor,
  type Route,
  rows,
  seedUser,
} from "../routes";
import { clerkUser, postClerkWebhook, signedWebhook } from "../webhooks";
import { openSocket, randomIp, storageOf } from "../ws";
import { answerOf, attackLog, dispatch, dispatchUpgrade, fillRooms, inPool, roomNamed } from "./attacks";

// Attacks on who may reach what (SPEC §4, §6, §11), over every route and socket the API document
// lists, so that a new route is attacked without this file changing.
//
// Tokens: every forged, stale or misdirected Clerk token against every authenticated route and
// every room's socket — by bearer header, ticket and first `authenticate` frame — and a valid
// token replayed after its account was deleted. Each must be refused with its catalog code (401,
// or the socket's close code), never answered.
//
// Another user's data ("another user's resource answers 404, never 403"): the attacker calls every
// route that names a resource, and every room's socket, with the owner's ids. Each must answer
// exactly what it answers for an id that does not exist — the same status, code and body — so
// that nothing, not even a count, tells the two apart; and nothing of the owner's, nor anything
// the attacker sees of their own, may change.

const encoder = new TextEncoder();
const nowSeconds = () => Math.floor(Date.now() / 1000);
const segment = (value: unknown) => toBase64Url(encoder.encode(JSON.stringify(value)));

type BadToken = { what: string; token: string | undefined; header?: string; code: "UNAUTHORIZED" | "TOKEN_EXPIRED" };

type Seeded = Awaited<ReturnType<typeof seedUser>>;

const isSocket = (route: Route) => route.method === "GET" && route.path.endsWith("/ws");

let document: ApiDocument;
let authenticated: Route[];
/** The room sockets of the document, each with the kind of resource its `{id}` names. */
let sockets: Array<{ path: string; kind: keyof Owned }>;

beforeAll(async () => {
  document = (await (await call("/api/v1/openapi.json")).json()) as ApiDocument;
  const routes = documentedRoutes(document);
  authenticated = routes.filter(isAuthenticated);
  sockets = routes.filter(isSocket).map((route) => ({ path: route.path, kind: pathKindsOf(route)[0]! }));
  expect(authenticated.length).toBeGreaterThan(20);
  expect(sockets.length).toBeGreaterThanOrEqual(2);
});

/** A route's request naming `resourcesOf`'s resources (see requestFor), sent with `authorization`. */
function attack(route: Route, resourcesOf: (pointer: number) => Owned, authorization: string | undefined) {
  const request = requestFor(route, resourcesOf);
  // From an address of its own: the socket-ticket routes count every request per IP before the token.
  const headers: Record<string, string> = { "CF-Connecting-IP": randomIp(), ...(authorization === undefined ? {} : { Authorization: authorization }) };
  if (request.json !== undefined) headers["Content-Type"] = "application/json";
  return dispatch(request.path, { method: request.method, headers, body: request.json === undefined ? undefined : JSON.stringify(request.json) });
}

/** Destructive routes last, so that one attack getting through spoils as few of the others as possible. */
const destructiveLast = (routes: Route[]) => [...routes].sort((a, b) => Number(a.method === "DELETE") - Number(b.method === "DELETE"));

/** Tokens for the victim's Clerk id that must all be refused. */
async function badTokens(sub: string): Promise<BadToken[]> {
  const now = nowSeconds();
  const genuine = await mintToken(sub);
  const [header, payload] = genuine.split(".") as [string, string, string];
  const claims = decodeJwt(genuine);
  const attacker = await generateKeyPair("RS256", { extractable: true });
  const attackerJwk = await exportJWK(attacker.publicKey);
  const byAttacker = (protectedHeader: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "JWT", ...protectedHeader }).sign(attacker.privateKey);
  const withPublicKeyAsSecret = (secret: Uint8Array) => new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT", kid: "local-dev" }).sign(secret);
  const publicPem = env.CLERK_JWT_KEY!;
  const publicDer = Uint8Array.from(atob(publicPem.replace(/-----[^-]+-----|\s/g, "")), (c) => c.charCodeAt(0));
  const otherUser = await mintToken(clerkId());
  const [otherHeader, , otherSignature] = otherUser.split(".") as [string, string, string];

  return [
    { what: "no Authorization header", token: undefined, code: "UNAUTHORIZED" },
    { what: "a Basic credential", token: undefined, header: `Basic ${btoa(`${sub}:password`)}`, code: "UNAUTHORIZED" },
    { what: "Bearer and nothing", token: undefined, header: "Bearer ", code: "UNAUTHORIZED" },
    { what: "not a JWT", token: "not-a-jwt", code: "UNAUTHORIZED" },
    { what: "two segments", token: `${header}.${payload}`, code: "UNAUTHORIZED" },
    { what: "alg none, no signature", token: `${segment({ alg: "none", typ: "JWT" })}.${payload}.`, code: "UNAUTHORIZED" },
    { what: "alg none, the genuine signature kept", token: `${segment({ alg: "none", typ: "JWT", kid: "local-dev" })}.${payload}.${genuine.split(".")[2]}`, code: "UNAUTHORIZED" },
    { what: "alg NONE (case)", token: `${segment({ alg: "NONE", typ: "JWT" })}.${payload}.`, code: "UNAUTHORIZED" },
    { what: "HS256 keyed with the public key's PEM", token: await withPublicKeyAsSecret(encoder.encode(publicPem)), code: "UNAUTHORIZED" },
    { what: "HS256 keyed with the public key's DER", token: await withPublicKeyAsSecret(publicDer), code: "UNAUTHORIZED" },
    { what: "RS512 claimed, RS256 signature", token: `${segment({ alg: "RS512", typ: "JWT", kid: "local-dev" })}.${payload}.${genuine.split(".")[2]}`, code: "UNAUTHORIZED" },
    { what: "another key, the trusted kid", token: await forgedToken(sub), code: "UNAUTHORIZED" },
    { what: "another key, an unknown kid", token: await byAttacker({ kid: "ins_attacker" }), code: "UNAUTHORIZED" },
    { what: "another key, a path in kid", token: await byAttacker({ kid: "../../../../dev/null" }), code: "UNAUTHORIZED" },
    { what: "another key, embedded as jwk", token: await byAttacker({ kid: "local-dev", jwk: attackerJwk }), code: "UNAUTHORIZED" },
    { what: "another key, fetched by jku", token: await byAttacker({ kid: "local-dev", jku: "https://attacker.example/jwks.json" }), code: "UNAUTHORIZED" },
    { what: "the trusted key, another kid", token: await mintToken(sub, { header: { kid: "ins_someone_else" } }), code: "UNAUTHORIZED" },
    { what: "the wrong iss", token: await mintToken(sub, { claims: { iss: "https://clerk.attacker.example" } }), code: "UNAUTHORIZED" },
    { what: "no iss", token: await mintToken(sub, { claims: { iss: undefined } }), code: "UNAUTHORIZED" },
    { what: "the wrong azp", token: await mintToken(sub, { azp: "https://attacker.example" }), code: "UNAUTHORIZED" },
    { what: "no azp", token: await mintToken(sub, { claims: { azp: undefined } }), code: "UNAUTHORIZED" },
    { what: "no sub", token: await mintToken(sub, { claims: { sub: undefined } }), code: "UNAUTHORIZED" },
    { what: "a numeric sub", token: await mintToken(sub, { claims: { sub: 42 } }), code: "UNAUTHORIZED" },
    { what: "no exp", token: await mintToken(sub, { claims: { exp: undefined } }), code: "UNAUTHORIZED" },
    { what: "a string exp", token: await mintToken(sub, { claims: { exp: String(now + 600) } }), code: "UNAUTHORIZED" },
    { what: "expired", token: await mintToken(sub, { nowSeconds: now - 600, ttlSeconds: 60 }), code: "TOKEN_EXPIRED" },
    { what: "expired just past the clock skew", token: await mintToken(sub, { claims: { exp: now - 10 } }), code: "TOKEN_EXPIRED" },
    // A day ahead, so that no slow run reaches the time they become valid.
    { what: "not valid before tomorrow", token: await mintToken(sub, { claims: { nbf: now + 86_400 } }), code: "UNAUTHORIZED" },
    { what: "issued tomorrow", token: await mintToken(sub, { claims: { iat: now + 86_400 } }), code: "UNAUTHORIZED" },
    { what: "another user's token, sub changed", token: `${otherHeader}.${segment({ ...decodeJwt(otherUser), sub })}.${otherSignature}`, code: "UNAUTHORIZED" },
    { what: "the genuine token, a claim added", token: `${header}.${segment({ ...claims, v: 3 })}.${genuine.split(".")[2]}`, code: "UNAUTHORIZED" },
    { what: "the genuine token, signature cut", token: `${header}.${payload}.${genuine.split(".")[2]!.slice(0, -4)}`, code: "UNAUTHORIZED" },
  ];
}

const authorizationOf = (bad: BadToken) => bad.header ?? (bad.token === undefined ? undefined : `Bearer ${bad.token}`);

/** What a socket that must not go live showed: undefined when it stayed dark, else what leaked. */
function leakedOn(frames: Array<{ type: string }>): string | undefined {
  const shown = frames.filter((frame) => frame.type !== "error");
  return shown.length > 0 ? `frames ${shown.map((frame) => frame.type).join(",")}` : undefined;
}

/** Opens a room's socket without credentials and authenticates with `token` in the first frame. */
async function frameAttack(path: string, token: string) {
  const socket = await openSocket(path);
  socket.send({ type: "authenticate", token, afterSeq: 0 });
  const closed = await socket.closed(5_000).catch(() => undefined);
  // One that went live is closed here, so that it holds nothing open for the attacks after it.
  if (!closed) socket.close();
  return { closed, leaked: leakedOn(socket.frames) };
}

async function snapshot() {
  return { rows: await rows(), users: await testDb().select().from(users).orderBy(users.id) };
}

describe("token attacks", () => {
  let victim: Seeded;
  let sub: string;
  let tokens: BadToken[];

  beforeAll(async () => {
    await resetDatabase();
    await clearBucket();
    victim = await seedUser();
    sub = decodeJwt(victim.token).sub!;
    tokens = await badTokens(sub);
    await fillRooms(victim.owned);
  });

  it("refuses every forged, stale or misdirected token on every authenticated route, 401 with its code, changing nothing", async ({ task }) => {
    const attacks = attackLog();
    const before = await snapshot();
    const cases = destructiveLast(authenticated).flatMap((route) => tokens.map((bad) => ({ route, bad })));
    await inPool(cases, 8, async ({ route, bad }) => {
      const answer = await answerOf(await attack(route, () => victim.owned, authorizationOf(bad)));
      attacks.refused(`${route.name} with ${bad.what}`, answer, { status: 401, code: bad.code });
    });
    const after = await snapshot();
    attacks.effect("rows after the token attacks", JSON.stringify(after) === JSON.stringify(before) ? undefined : "rows changed");
    attacks.settle(task);
    // The victim's own token still works: the refusals were not refusing everything.
    expect((await callAs(victim.token, "/api/v1/users/me")).status).toBe(200);
  });

  it("refuses every such token on every room's socket: the bearer header (401) and the authenticate frame (4401), showing nothing", async ({ task }) => {
    const attacks = attackLog();
    for (const socket of sockets) {
      const path = socket.path.replace("{id}", victim.owned[socket.kind]);
      await inPool(tokens, 6, async (bad) => {
        const authorization = authorizationOf(bad);
        if (authorization !== undefined) {
          const answer = await answerOf(await dispatchUpgrade(path, { Authorization: authorization }));
          attacks.refused(`GET ${socket.path} upgrade with ${bad.what}`, answer, { status: 401, code: bad.code });
        }
        if (bad.token === undefined) return;
        const { closed, leaked } = await frameAttack(path, bad.token);
        attacks.judged(`GET ${socket.path} authenticate frame with ${bad.what}`, leaked ?? (closed?.code === 4401 && closed.reason === "TOKEN_INVALID" ? undefined : `closed ${JSON.stringify(closed)}`));
      });
    }
    attacks.settle(task);
  });

  it("refuses a socket ticket used twice, on another room, with another user's id, or forged: 401 WS_TICKET_INVALID", async ({ task }) => {
    const attacks = attackLog();
    const other = await seedUser();
    for (const [index, socket] of sockets.entries()) {
      const path = socket.path.replace("{id}", victim.owned[socket.kind]);
      const elsewhere = sockets[(index + 1) % sockets.length]!;
      const ticket = () => ticketOf(victim.token, path.replace(/\/ws$/, "/ws-ticket"));
      const used = await ticket();
      expect((await answerOf(await dispatchUpgrade(`${path}?ticket=${encodeURIComponent(used)}`))).status, "a fresh ticket opens its room").toBe(101);
      const secret = (await ticket()).split(".")[1]!;
      const tickets: Array<[string, string]> = [
        ["a ticket used a second time", `${path}?ticket=${encodeURIComponent(used)}`],
        ["a ticket for this room on another room's socket", `${elsewhere.path.replace("{id}", other.owned[elsewhere.kind])}?ticket=${encodeURIComponent(await ticket())}`],
        ["a ticket of this room with another user's id", `${path}?ticket=${encodeURIComponent(`${other.userId}.${secret}`)}`],
        ["a forged ticket", `${path}?ticket=${victim.userId}.${"A".repeat(43)}`],
        ["a ticket with a path in it", `${path}?ticket=${encodeURIComponent(`../${victim.userId}.${secret}`)}`],
      ];
      for (const [what, target] of tickets) {
        attacks.refused(`GET ${socket.path} upgrade with ${what}`, await answerOf(await dispatchUpgrade(target)), { status: 401, code: "WS_TICKET_INVALID" });
      }
    }
    attacks.settle(task);
  });
});

/** Every authenticated route with `token`, each to answer 401 ACCOUNT_DELETED; then each socket. */
async function replayEverywhere(attacks: ReturnType<typeof attackLog>, victim: Seeded, token: string, label: string, ticket: string | undefined) {
  await inPool(destructiveLast(authenticated), 6, async (route) => {
    const answer = await answerOf(await attack(route, () => victim.owned, `Bearer ${token}`));
    attacks.refused(`${route.name} with ${label}`, answer, { status: 401, code: "ACCOUNT_DELETED" });
  });
  for (const socket of sockets) {
    const path = socket.path.replace("{id}", victim.owned[socket.kind]);
    // A deleted account owns no room: the same answer as someone else's room.
    attacks.refused(`GET ${socket.path} upgrade with ${label}`, await answerOf(await dispatchUpgrade(path, { Authorization: `Bearer ${token}` })), { status: 404, code: "NOT_FOUND" });
    const { closed, leaked } = await frameAttack(path, token);
    attacks.judged(`GET ${socket.path} authenticate frame with ${label}`, leaked ?? (closed?.code === 4404 ? undefined : `closed ${JSON.stringify(closed)}`));
  }
  if (ticket) {
    const path = `/api/v1/sessions/${victim.owned.session}/ws?ticket=${encodeURIComponent(ticket)}`;
    attacks.refused(`a ticket issued before the deletion (${label})`, await answerOf(await dispatchUpgrade(path)), { status: 404, code: "NOT_FOUND" });
  }
}

/** A socket ticket, asked for at `ticketPath` (a room's `…/ws-ticket`). */
async function ticketOf(token: string, ticketPath: string): Promise<string> {
  const issued = await json<{ ticket: string }>(await callAs(token, ticketPath, { method: "POST", headers: { "CF-Connecting-IP": randomIp() } }));
  if (!issued.success) throw new Error(`no ticket: ${JSON.stringify(issued)}`);
  return issued.data.ticket;
}

describe("a token replayed after its account was deleted", () => {
  beforeAll(async () => {
    await resetDatabase();
    await clearBucket();
  });

  it("by its owner (DELETE /users/me): 401 ACCOUNT_DELETED everywhere, no room, and the account stays deleted", async ({ task }) => {
    const attacks = attackLog();
    const victim = await seedUser();
    await fillRooms(victim.owned);
    const ticket = await ticketOf(victim.token, `/api/v1/sessions/${victim.owned.session}/ws-ticket`);
    expect((await callAs(victim.token, "/api/v1/users/me", { method: "DELETE" })).status).toBe(200);
    const before = await snapshot();

    await replayEverywhere(attacks, victim, victim.token, "the token of the deleted account", ticket);

    const after = await snapshot();
    attacks.effect("rows after the replay", JSON.stringify(after.rows) === JSON.stringify(before.rows) ? undefined : "rows changed");
    attacks.effect("the account after the replay", JSON.stringify(after.users) === JSON.stringify(before.users) ? undefined : "restored or changed");
    attacks.settle(task);
  });

  it("by Clerk (user.deleted): 401 ACCOUNT_DELETED everywhere, also to a newer token and after a late user.created, and never restored", async ({ task }) => {
    const attacks = attackLog();
    const victim = await seedUser();
    const sub = decodeJwt(victim.token).sub!;
    await fillRooms(victim.owned);
    const ticket = await ticketOf(victim.token, `/api/v1/sessions/${victim.owned.session}/ws-ticket`);
    const deletion = signedWebhook({ type: "user.deleted", data: { id: sub, deleted: true, object: "user" } });
    expect((await postClerkWebhook(deletion.init)).status).toBe(200);
    const before = await snapshot();

    await replayEverywhere(attacks, victim, victim.token, "a token issued before Clerk deleted the user", ticket);
    // Clerk's deletion is final: a token issued after it does not restore the account either.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await replayEverywhere(attacks, victim, await mintToken(sub), "a token issued after Clerk deleted the user", undefined);
    // The deletion delivered again, and a late user.created (Clerk delivers out of order): no restore.
    const replayed = await answerOf(await postClerkWebhook(deletion.init));
    attacks.judged("user.deleted delivered again", (replayed.body as { data?: { duplicate?: boolean } }).data?.duplicate === true ? undefined : `answered ${JSON.stringify(replayed.body)}`);
    const late = await answerOf(await postClerkWebhook(signedWebhook({ type: "user.created", data: clerkUser(sub) }).init));
    attacks.judged("a late user.created", late.status === 200 ? undefined : `answered ${late.status}`);
    attacks.refused("GET /api/v1/users/me after the late user.created", await answerOf(await callAs(await mintToken(sub), "/api/v1/users/me")), { status: 401, code: "ACCOUNT_DELETED" });

    const after = await snapshot();
    attacks.effect("rows after the replay", JSON.stringify(after.rows) === JSON.stringify(before.rows) ? undefined : "rows changed");
    const [account] = after.users.filter((user) => user.clerkId === sub);
    attacks.effect("the account after the replay", account?.deletedAt && account.deletedBy === "clerk" ? undefined : "restored");
    attacks.settle(task);
  });
});

/** Routes with a path parameter that other families attack (the parameter is no user's id). */
const COVERED_ELSEWHERE: Record<string, string> = {
  "PUT /api/v1/uploads/{key}": "attacks-signed.worker.test.ts: another user's URL, traversal in keys",
  "POST /jobs/{name}": "attacks-signed.worker.test.ts: job deliveries",
};

/** An id shaped like `id` (CUID2: a letter, then lower-case letters and digits) that names nothing. */
function absentId(id: string): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const random = crypto.getRandomValues(new Uint8Array(id.length));
  return [...random].map((byte, i) => alphabet[i === 0 ? byte % 26 : byte % alphabet.length]).join("");
}

/** Resources of every kind shaped like the owner's, none of which exists. */
function absent(owned: Owned): Owned {
  return {
    session: absentId(owned.session),
    message: absentId(owned.message),
    suggestion: absentId(owned.suggestion),
    opener: absentId(owned.opener),
    openerGeneration: absentId(owned.openerGeneration),
    pushToken: newPushToken(),
    // In the owner's own namespace, as their real key is.
    upload: owned.upload.replace(/[^/]+(?=\.\w+$)/, absentId("x".repeat(22))),
  };
}

const roomStubOf = (room: RoomAddress) => roomStub(env, room);

/** The events a room holds, as one string to compare. */
const storedEvents = async (room: RoomAddress) => JSON.stringify(await roomStubOf(room).eventsAfter(0));

/** The ids of a user's suggestion generations. */
async function generationsOf(user: Seeded): Promise<string[]> {
  const rows = await testDb().select({ id: suggestionGenerations.id }).from(suggestionGenerations).where(eq(suggestionGenerations.sessionId, user.owned.session));
  return rows.map((row) => row.id);
}

/** An answer with the ids it was asked about replaced, so that two answers can be compared. */
function normalised(body: unknown, ids: string[]): string {
  let text = JSON.stringify(body);
  for (const id of ids) text = text.replaceAll(id, "<id>").replaceAll(encodeURIComponent(id), "<id>");
  return text;
}

/** What the attacker sees of their own account: every list, count and insight. */
async function viewOf(user: Seeded) {
  const paths = [
    "/api/v1/users/me",
    "/api/v1/users/me/usage",
    "/api/v1/users/me/insights",
    "/api/v1/sessions",
    `/api/v1/sessions/${user.owned.session}`,
    `/api/v1/sessions/${user.owned.session}/suggestions`,
    "/api/v1/magic-openers",
    "/api/v1/tips/today",
  ];
  return Promise.all(paths.map(async (path) => ({ path, ...(await answerOf(await callAs(user.token, path))) })));
}

describe("another user's data", () => {
  let owner: Seeded;
  let attacker: Seeded;
  let attackerViewBefore: Awaited<ReturnType<typeof viewOf>>;

  beforeAll(async () => {
    await resetDatabase();
    await clearBucket();
    // The attacker's own view is taken before the owner has anything, so that any trace of the
    // owner's data in it shows.
    attacker = await seedUser();
    await fillRooms(attacker.owned);
    attackerViewBefore = await viewOf(attacker);
    owner = await seedUser();
    await fillRooms(owner.owned);
  });

  it("has an ownership case for every route with a path parameter", () => {
    const uncovered = documentedRoutes(document)
      .filter((route) => route.path.includes("{"))
      .filter((route) => !COVERED_ELSEWHERE[route.name] && !isSocket(route) && !(isAuthenticated(route) && pointersOf(route).length > 0))
      .map((route) => route.name);
    expect(uncovered, "routes taking an id that no ownership attack reaches").toEqual([]);
  });

  it("answers every route named with the owner's ids exactly as for ids that do not exist, changing nothing", async ({ task }) => {
    const attacks = attackLog();
    const ownerRowsBefore = await rows();
    const nowhere = absent(owner.owned);
    const routes = documentedRoutes(document).filter((route) => isAuthenticated(route) && pointersOf(route).length > 0);
    await inPool(routes, 4, async (route) => {
      const pointers = pointersOf(route);
      // Every named resource the owner's (the outermost one answers), then, when there are
      // several, one at a time among the attacker's own.
      const all = pointers.map((_, pointer) => pointer);
      for (const victims of pointers.length > 1 ? [all, ...all.map((pointer) => [pointer])] : [all]) {
        const code = notFoundCodes[pointers[victims[0]!]!];
        const send = async (theirs: Owned) =>
          answerOf(await attack(route, (pointer) => (victims.includes(pointer) ? theirs : attacker.owned), `Bearer ${attacker.token}`));
        const ownersAnswer = await send(owner.owned);
        const absentAnswer = await send(nowhere);
        const what = `${route.name} with the owner's ${victims.map((pointer) => pointers[pointer]).join(" and ")}`;
        attacks.refused(what, ownersAnswer, { status: 404, code });
        expect(documentedNotFound(route), `${route.name} documents ${code}`).toContain(code);
        // The same answer for an id that does not exist: status, code, message, details, shape.
        const ids = victims.flatMap((pointer) => [owner.owned[pointers[pointer]!], nowhere[pointers[pointer]!]]);
        const leak = normalised(ownersAnswer.body, ids) !== normalised(absentAnswer.body, ids) || ownersAnswer.status !== absentAnswer.status;
        attacks.judged(`${what}, against an absent id`, leak ? `answered ${ownersAnswer.status} ${normalised(ownersAnswer.body, ids)} but ${absentAnswer.status} ${normalised(absentAnswer.body, ids)} for an absent id` : undefined);
      }
    });
    attacks.effect("the owner's rows", JSON.stringify(await rows()) === JSON.stringify(ownerRowsBefore) ? undefined : "changed by the attacker's requests");
    attacks.settle(task);
  });

  it("answers every room socket of the owner's as one that does not exist: 404 to a header or ticket upgrade, 4404 to an authenticate frame, and stores nothing", async ({ task }) => {
    const attacks = attackLog();
    const sockets = documentedRoutes(document).filter(isSocket);
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    const nowhere = absent(owner.owned);
    for (const socket of sockets) {
      const kind = pathKindsOf(socket)[0]!;
      const room = roomNamed(kind, owner.owned[kind]);
      const storedBefore = await storageOf(room);
      const eventsBefore = await storedEvents(room);
      for (const [whose, owned] of [["the owner's", owner.owned], ["an absent", nowhere]] as const) {
        const path = socket.path.replace("{id}", owned[kind]);
        const header = await answerOf(await dispatchUpgrade(path, { Authorization: `Bearer ${attacker.token}` }));
        attacks.refused(`${socket.name} upgrade by bearer to ${whose} room`, header, { status: 404, code: "NOT_FOUND" });
        // The attacker's own ticket (for their own room of this kind) on this room.
        const ticket = await ticketOf(attacker.token, socket.path.replace("{id}", attacker.owned[kind]).replace(/\/ws$/, "/ws-ticket"));
        const viaTicket = await answerOf(await dispatchUpgrade(`${path}?ticket=${encodeURIComponent(ticket)}`));
        attacks.refused(`${socket.name} upgrade with the attacker's ticket to ${whose} room`, viaTicket, { status: 401, code: "WS_TICKET_INVALID" });
        const { closed, leaked } = await frameAttack(path, attacker.token);
        attacks.judged(`${socket.name} authenticate frame on ${whose} room`, leaked ?? (closed?.code === 4404 && closed.reason === "ROOM_NOT_FOUND" ? undefined : `closed ${JSON.stringify(closed)}`));
      }
      const storedAfter = await storageOf(room);
      attacks.effect(`${socket.name}: the owner's room`, JSON.stringify({ ...storedAfter, sockets: 0 }) === JSON.stringify({ ...storedBefore, sockets: 0 }) && (await storedEvents(room)) === eventsBefore ? undefined : "its storage changed");
      const absentRoom = await storageOf(roomNamed(kind, nowhere[kind]));
      attacks.effect(`${socket.name}: an absent room`, absentRoom.tables === 0 && absentRoom.alarm === null ? undefined : "got storage");
    }
    attacks.settle(task);
  });

  it("lets no `cancel` frame on the attacker's own socket reach the owner's generation", async ({ task }) => {
    const attacks = attackLog();
    const socket = await openSocket(`/api/v1/sessions/${attacker.owned.session}/ws`, { Authorization: `Bearer ${attacker.token}` });
    await socket.frame("authenticated");
    const generations = [owner.owned.openerGeneration, ...(await generationsOf(owner))];
    for (const generationId of generations) socket.send({ type: "cancel", generationId });
    socket.send({ type: "ping" });
    await socket.frame("pong");
    for (const generationId of generations) {
      const reached = await Promise.all([
        roomStubOf(roomNamed("session", owner.owned.session)).isCancelRequested(generationId),
        roomStubOf(roomNamed("openerGeneration", owner.owned.openerGeneration)).isCancelRequested(generationId),
      ]);
      attacks.judged(`cancel of the owner's generation from the attacker's room`, reached.some(Boolean) ? "the owner's room took it" : undefined);
    }
    socket.close();
    attacks.settle(task);
  });

  it("leaves the attacker's own lists, counts and insights as they were before the owner had any data", async ({ task }) => {
    const attacks = attackLog();
    const after = await viewOf(attacker);
    for (const [i, view] of after.entries()) {
      const before = attackerViewBefore[i]!;
      // Timestamps of the attacker's own rows do not move; anything else that differs came from the owner.
      attacks.judged(`GET ${view.path} of the attacker`, JSON.stringify(view) === JSON.stringify(before) ? undefined : `changed: ${JSON.stringify(before.body)} → ${JSON.stringify(view.body)}`);
    }
    const text = JSON.stringify(after);
    for (const id of Object.values(owner.owned)) attacks.judged(`the owner's ${id.slice(0, 4)}… in the attacker's view`, text.includes(id) ? "shown" : undefined);
    attacks.judged("the owner's user id in the attacker's view", text.includes(owner.userId) ? "shown" : undefined);
    attacks.settle(task);
  });
});
