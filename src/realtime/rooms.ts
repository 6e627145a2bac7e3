import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../lib/app-env";
import type { Bindings } from "../lib/env";
import { AppError, type CloseErrorCode } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { createRouter, errorResponses } from "../lib/openapi";
import type { RoomKind } from "./kinds";
import { ROOM_ID_PATTERN, type RoomAddress, type RoomEvent, roomName } from "./protocol";
import type { RoomObject } from "./session-room";

/** The room object of one room, whatever its kind; one Durable Object per room. */
export function roomStub(env: Pick<Bindings, "SESSION_ROOM">, room: RoomAddress) {
  // lib/env.ts declares the binding without the room object's type, so that lib imports
  // nothing from realtime; the binding is the one wrangler.toml gives the RoomObject class.
  const namespace = env.SESSION_ROOM as unknown as DurableObjectNamespace<RoomObject>;
  return namespace.getByName(roomName(room));
}

/**
 * `GET /api/v1/<kind path>` for every room kind: hands the raw upgrade request to the room,
 * which authenticates the socket after the upgrade (browsers and React Native cannot set
 * headers on a WebSocket). Mounted before any guard.
 */
export function createRoomRoutes(kinds: ReadonlyArray<RoomKind>) {
  const router = createRouter();
  for (const kind of kinds) {
    router.openAPIRegistry.registerPath({
      method: "get",
      path: kind.path.replace(":id", "{id}"),
      tags: ["realtime"],
      summary: `WebSocket for ${kind.title}: send {"type":"authenticate","token"} first, within 10 s`,
      request: { params: z.object({ id: z.string() }) },
      responses: {
        101: { description: "Switching protocols. Close codes: 4401 unauthenticated, 4404 not found or not yours, 4429 too many frames" },
        ...errorResponses("UPGRADE_REQUIRED", "NOT_FOUND"),
      },
    });
    router.get(kind.path, (c: Context<AppEnv>) => {
      if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new AppError("UPGRADE_REQUIRED");
      const id = c.req.param("id") ?? "";
      if (!ROOM_ID_PATTERN.test(id)) throw new AppError("NOT_FOUND");
      return roomStub(c.env, { kind: kind.name, id }).fetch(c.req.raw);
    });
  }
  return router;
}

export type Broadcast = (room: RoomAddress, event: RoomEvent, options?: { key?: string }) => Promise<void>;

/**
 * Publishes to a room. Postgres already holds the change when this runs, so a room that
 * cannot be reached is logged and the request still succeeds: clients catch up by GET.
 */
export function createBroadcast(env: Pick<Bindings, "SESSION_ROOM">, logger: Logger): Broadcast {
  return async (room, event, options) => {
    try {
      await roomStub(env, room).publish(event, options);
    } catch (error) {
      logger.error("room publish failed", { room: room.kind, event: event.type, error });
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

/** How often a run asks its room whether a socket sent `cancel` (SPEC: stop within 1 s). */
const CANCEL_POLL_MS = 100;

/**
 * Watches a room for a `cancel` of one generation (a frame any socket of the room may send):
 * asks the room every CANCEL_POLL_MS and aborts `abort` once it was asked for. Answers the
 * function that stops watching.
 */
export function watchForCancel(
  env: Pick<Bindings, "SESSION_ROOM">,
  room: RoomAddress,
  generationId: string,
  abort: AbortController,
  logger: Logger,
): () => void {
  const stub = roomStub(env, room);
  let failing = false;
  const timer = setInterval(() => {
    stub.isCancelRequested(generationId).then(
      (cancelled) => {
        failing = false;
        if (cancelled) abort.abort(new Error("cancelled by the user"));
      },
      (error: unknown) => {
        // Once per outage, not ten times a second.
        if (!failing) logger.warn("cancel poll failed", { error });
        failing = true;
      },
    );
  }, CANCEL_POLL_MS);
  return () => clearInterval(timer);
}
