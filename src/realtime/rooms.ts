import { createRoute, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { every } from "hono/combine";
import type { AppEnv } from "../lib/app-env";
import { bearerToken, verifySessionToken } from "../lib/auth";
import { ok } from "../lib/envelope";
import type { AppConfig, Bindings } from "../lib/env";
import { AppError, type CloseErrorCode } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { authErrors, bearerSecurity, createRouter, errorResponses, jsonResponse } from "../lib/openapi";
import { rateLimit } from "../lib/rate-limit";
import { redisFor } from "../lib/services";
import { issueTicket, ROOM_GRANT_HEADER, type RoomGrant, redeemTicket, type TicketHolder } from "./access";
import { type RoomKind, roomBasePath, roomUrl } from "./kinds";
import { type PublishAnswer, type PublishOptions, ROOM_ID_PATTERN, type RoomAddress, type RoomEvent, roomName } from "./protocol";
import { releaseSocket, reserveSocket, roomsOfUser } from "./registry";
import type { RoomObject } from "./session-room";

/** The room object of one room, whatever its kind; one Durable Object per room. */
export function roomStub(env: Pick<Bindings, "SESSION_ROOM">, room: RoomAddress) {
  // lib/env.ts declares the binding without the room object's type, so that lib imports
  // nothing from realtime; the binding is the one wrangler.toml gives the RoomObject class.
  const namespace = env.SESSION_ROOM as unknown as DurableObjectNamespace<RoomObject>;
  return namespace.getByName(roomName(room));
}

/** The guard chains the room routes use (the app builds them; see features.ts). */
export type RoomGuards = {
  /** Config and database on the context. */
  services: MiddlewareHandler<AppEnv>[];
  /** `services`, a verified Clerk session (`c.var.user`, `c.var.auth`), the per-user rate limit. */
  authenticated: MiddlewareHandler<AppEnv>[];
};

const roomIdParamsSchema = z.object({
  id: z.string().regex(ROOM_ID_PATTERN, "Not a room id").openapi({ param: { name: "id", in: "path" } }),
});

const wsTicketSchema = z
  .object({
    ticket: z.string().describe("Single use; put it in the socket URL as `?ticket=`"),
    expiresAt: z.string().datetime().describe("Use it before this (60 s, or the token's own expiry if sooner)"),
    url: z.string().describe("The socket's `wss://` URL with the ticket in it"),
  })
  .openapi("WsTicket");

const SOCKET_PROTOCOL =
  "Authenticate the upgrade with `Authorization: Bearer <Clerk JWT>` (native clients) or `?ticket=` from `POST …/ws-ticket` " +
  "(browsers): the socket is live at once and the first frame is `authenticated`; add `?afterSeq=N` to get the stored events after N first. " +
  'A client that can do neither sends `{"type":"authenticate","token"}` as its first frame, within 10 s. ' +
  "Before the token expires, send `authenticate` with a fresh token of the same user (answered `authenticated`), or the socket closes 4401 TOKEN_EXPIRED. " +
  "Close codes: 4401 unauthenticated, token expired or account deleted; 4404 not found, not yours, or deleted; 4429 too many frames or sockets.";

/**
 * For every room kind: `GET /api/v1/<kind path>`, the WebSocket, and
 * `POST /api/v1/<kind path without /ws>/ws-ticket`. The socket route checks the right to the
 * room before the room's object is touched — a bearer header or a ticket — so an upgrade with no
 * right creates no room storage; without either, the room waits for a first-frame `authenticate`
 * and writes nothing meanwhile. Every request to either route counts first against the per-IP
 * `upgrade` limit.
 */
export function createRoomRoutes(kinds: ReadonlyArray<RoomKind>, guards: RoomGuards) {
  const router = createRouter();
  const upgradeLimit = rateLimit("upgrade");
  for (const kind of kinds) {
    const ticketRoute = createRoute({
      method: "post",
      path: `${roomBasePath(kind).replace(":id", "{id}")}/ws-ticket`,
      tags: ["realtime"],
      security: bearerSecurity,
      summary: `A single-use ticket (60 s) to open the WebSocket of ${kind.title} without a header`,
      description: SOCKET_PROTOCOL,
      // The per-IP limit comes first (after the config it reads), before the token is verified.
      middleware: [...guards.services, upgradeLimit, ...guards.authenticated],
      request: { params: roomIdParamsSchema },
      responses: {
        200: jsonResponse(wsTicketSchema, "The ticket, and the socket URL that carries it"),
        ...errorResponses("VALIDATION_ERROR", kind.notFound, "SERVICE_UNAVAILABLE", ...authErrors),
      },
    });
    router.openapi(ticketRoute, async (c) => {
      const { id } = c.req.valid("param");
      const userId = await kind.owns(c.var.db, id, c.var.auth.clerkUserId);
      if (userId !== c.var.user.id) throw new AppError(kind.notFound);
      const room = { kind: kind.name, id };
      const holder = { userId, clerkUserId: c.var.auth.clerkUserId, tokenExpiresAt: c.var.auth.expiresAt };
      const issued = await withRedis(c, () => issueTicket(redisFor(c.var.config), room, holder));
      const url = new URL(roomUrl(c.var.config.PUBLIC_BASE_URL, kind, id));
      url.searchParams.set("ticket", issued.ticket);
      return ok(c, { ticket: issued.ticket, expiresAt: new Date(issued.expiresAt).toISOString(), url: url.toString() });
    });

    router.openAPIRegistry.registerPath({
      method: "get",
      path: kind.path.replace(":id", "{id}"),
      tags: ["realtime"],
      summary: `WebSocket for ${kind.title}: a bearer header, a ticket, or a first authenticate frame`,
      description: SOCKET_PROTOCOL,
      request: {
        params: z.object({ id: z.string() }),
        query: z.object({
          ticket: z.string().optional().describe("From `POST …/ws-ticket`; single use"),
          afterSeq: z.string().regex(/^\d{1,15}$/).optional().describe("With a header or ticket: replay the stored events after this seq first"),
        }),
      },
      responses: {
        101: { description: "Switching protocols" },
        ...errorResponses("VALIDATION_ERROR", "UNAUTHORIZED", "TOKEN_EXPIRED", "WS_TICKET_INVALID", "NOT_FOUND", "UPGRADE_REQUIRED", "TOO_MANY_SOCKETS", "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
      },
    });
    router.get(kind.path, every(...guards.services, upgradeLimit), async (c: Context<AppEnv>) => {
      if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new AppError("UPGRADE_REQUIRED");
      const id = c.req.param("id") ?? "";
      if (!ROOM_ID_PATTERN.test(id)) throw new AppError("NOT_FOUND");
      const afterSeq = c.req.query("afterSeq");
      if (afterSeq !== undefined && !/^\d{1,15}$/.test(afterSeq)) {
        throw new AppError("VALIDATION_ERROR", { message: "afterSeq must be a non-negative integer" });
      }
      const room = { kind: kind.name, id };
      const headers = new Headers(c.req.raw.headers);
      // Only the Worker speaks for a socket: whatever a client put in this header never reaches the room.
      headers.delete(ROOM_GRANT_HEADER);
      const grant = await verifyUpgrade(c, kind, room);
      if (grant) {
        await admitSocket(c, room, grant);
        headers.set(ROOM_GRANT_HEADER, JSON.stringify(grant));
      }
      try {
        return await roomStub(c.env, room).fetch(new Request(c.req.raw, { headers }));
      } catch (error) {
        if (grant) await releaseSocket(redisFor(c.var.config), grant.userId, { room, socketId: grant.socketId }).catch(() => undefined);
        throw error;
      }
    });
  }
  return router;
}

/**
 * The grant of an upgrade that carries a bearer token or a ticket, checked against the room's
 * owner; 401/404 when either is wrong. None for an upgrade with neither (first-frame auth).
 */
async function verifyUpgrade(c: Context<AppEnv>, kind: RoomKind, room: RoomAddress): Promise<RoomGrant | undefined> {
  const authorization = c.req.header("Authorization");
  const ticket = c.req.query("ticket");
  // A ticket names its user; a bearer token only its Clerk user, whose id the ownership check gives.
  let holder: Omit<TicketHolder, "userId"> & { userId?: string };
  if (authorization !== undefined) {
    const token = bearerToken(authorization);
    if (!token) throw new AppError("UNAUTHORIZED", { message: "Expected Authorization: Bearer <token>" });
    const session = await verifySessionToken(token, c.var.config);
    holder = { clerkUserId: session.clerkUserId, tokenExpiresAt: session.expiresAt };
  } else if (ticket !== undefined) {
    const redeemed = await withRedis(c, () => redeemTicket(redisFor(c.var.config), ticket, room));
    if (!redeemed) throw new AppError("WS_TICKET_INVALID");
    holder = redeemed;
  } else {
    return undefined;
  }
  // Checked again for a ticket: the session or the account may have been deleted since it was issued.
  const owner = await kind.owns(c.var.db, room.id, holder.clerkUserId);
  if (!owner || (holder.userId !== undefined && owner !== holder.userId)) throw new AppError("NOT_FOUND");
  return { userId: owner, clerkUserId: holder.clerkUserId, expiresAt: holder.tokenExpiresAt, socketId: crypto.randomUUID() };
}

/**
 * Counts the socket in its user's registry, or 429 TOO_MANY_SOCKETS at the cap. Without Redis the
 * socket is let in unregistered (logged): its token's expiry still closes it.
 */
async function admitSocket(c: Context<AppEnv>, room: RoomAddress, grant: RoomGrant): Promise<void> {
  let admitted = true;
  try {
    admitted = await reserveSocket(redisFor(c.var.config), grant.userId, { room, socketId: grant.socketId }, grant.expiresAt, c.var.config.WS_MAX_SOCKETS_PER_USER);
  } catch (error) {
    c.var.logger.warn("socket registry unavailable; socket not counted", { room: room.kind, error });
  }
  if (!admitted) throw new AppError("TOO_MANY_SOCKETS");
}

/** Runs a Redis call a request cannot do without: an outage is a 503, not a 500. */
async function withRedis<T>(c: Context<AppEnv>, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    c.var.logger.warn("redis unavailable", { error });
    throw new AppError("SERVICE_UNAVAILABLE");
  }
}

/**
 * Closes every open socket of a user, in every room its registry lists, with `code` (an account
 * deletion). Rooms that cannot be reached, or a Redis that cannot, are logged: those sockets still
 * close when their token expires, and a refresh finds the account gone.
 */
export async function closeSocketsOfUser(
  env: Pick<Bindings, "SESSION_ROOM">,
  config: AppConfig,
  userId: string,
  code: CloseErrorCode,
  logger: Logger,
): Promise<{ closedSockets: number }> {
  let rooms: RoomAddress[];
  try {
    rooms = await roomsOfUser(redisFor(config), userId);
  } catch (error) {
    logger.error("socket registry unavailable; the user's sockets stay open until their tokens expire", { error });
    return { closedSockets: 0 };
  }
  const closed = await Promise.all(
    rooms.map((room) =>
      roomStub(env, room)
        .closeUserSockets(userId, code)
        .then(
          (answer) => answer.closedSockets,
          (error: unknown) => {
            logger.error("room unreachable while closing a user's sockets", { room: room.kind, error });
            return 0;
          },
        ),
    ),
  );
  return { closedSockets: closed.reduce((sum, n) => sum + n, 0) };
}

export type Broadcast = (room: RoomAddress, event: RoomEvent, options?: PublishOptions) => Promise<PublishAnswer | undefined>;

/**
 * Publishes to a room. Postgres already holds the change when this runs, so a room that
 * cannot be reached is logged and the request still succeeds (answered `undefined`): clients
 * catch up by GET.
 */
export function createBroadcast(env: Pick<Bindings, "SESSION_ROOM">, logger: Logger): Broadcast {
  return async (room, event, options) => {
    try {
      return await roomStub(env, room).publish(event, options);
    } catch (error) {
      logger.error("room publish failed", { room: room.kind, event: event.type, error });
      return undefined;
    }
  };
}

/**
 * Closes a room's sockets with `code` and deletes everything it stored (see RoomObject.forget).
 * Throws when the room cannot be reached: a caller that must not leave storage behind retries.
 */
export async function forgetRoom(env: Pick<Bindings, "SESSION_ROOM">, room: RoomAddress, code: CloseErrorCode) {
  return roomStub(env, room).forget(code);
}

/** How often a run checks for a `cancel` of its generation (a cancel stops it within a second). */
const CANCEL_POLL_MS = 100;

/** The latest answer a run's own publishes got from its room (see `PublishOptions.cancelOf`). */
export type RoomHearing = { at: number; cancelRequested: boolean };

/**
 * Watches a room for a `cancel` of one generation (a frame any socket of the room may send) and
 * aborts `abort` once it was asked for. Every CANCEL_POLL_MS it looks at `lastHeard`, the
 * answer to the run's latest publish: while the run streams, that answer is fresh and says
 * whether a cancel came, so the room is not asked again. Only a run that has published nothing
 * lately (still reading the chat, or waiting for the model's first token) asks the room, and
 * never with a question still unanswered: a slow room gets one poll per run at a time, not a
 * pile of them. Answers the function that stops watching, which waits for a question still
 * out so none outlives the run.
 */
export function watchForCancel(
  env: Pick<Bindings, "SESSION_ROOM">,
  room: RoomAddress,
  generationId: string,
  abort: AbortController,
  logger: Logger,
  lastHeard: () => RoomHearing | undefined = () => undefined,
): () => Promise<void> {
  const stub = roomStub(env, room);
  const cancel = () => abort.abort(new Error("cancelled by the user"));
  let failing = false;
  let asking: Promise<void> | undefined;
  const timer = setInterval(() => {
    const heard = lastHeard();
    if (heard && Date.now() - heard.at < CANCEL_POLL_MS) {
      if (heard.cancelRequested) cancel();
      return;
    }
    if (asking) return;
    asking = stub.isCancelRequested(generationId).then(
      (cancelled) => {
        failing = false;
        if (cancelled) cancel();
      },
      (error: unknown) => {
        // Once per outage, not ten times a second.
        if (!failing) logger.warn("cancel poll failed", { error });
        failing = true;
      },
    );
    void asking.finally(() => (asking = undefined));
  }, CANCEL_POLL_MS);
  return async () => {
    clearInterval(timer);
    await asking;
  };
}
