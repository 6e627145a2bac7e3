import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../lib/app-env";
import type { Bindings } from "../lib/env";
import { AppError } from "../lib/errors";
import { type createRouter, errorResponses } from "../lib/openapi";
import type { Logger } from "../lib/logger";
import { type RoomAddress, type RoomEvent, roomFromPath, roomName } from "./protocol";

export function roomStub(env: Pick<Bindings, "SESSION_ROOM">, kind: RoomAddress["kind"], id: string) {
  return env.SESSION_ROOM.getByName(roomName({ kind, id }));
}

/**
 * `GET …/ws`: hands the raw upgrade request to the room, which authenticates the socket after
 * the upgrade (browsers and React Native cannot set headers on a WebSocket).
 */
export async function forwardToRoom(c: Context<AppEnv>): Promise<Response> {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new AppError("UPGRADE_REQUIRED");
  const room = roomFromPath(c.req.path);
  if (!room) throw new AppError("NOT_FOUND");
  return roomStub(c.env, room.kind, room.id).fetch(c.req.raw);
}

/** The WebSocket routes in the API document (the protocol itself is SPEC §6 / the README). */
export function documentRoomRoutes(registry: ReturnType<typeof createRouter>["openAPIRegistry"]): void {
  for (const [path, what] of [
    ["/api/v1/sessions/{id}/ws", "a session"],
    ["/api/v1/magic-openers/generations/{id}/ws", "a magic-opener generation"],
  ] as const) {
    registry.registerPath({
      method: "get",
      path,
      tags: ["realtime"],
      summary: `WebSocket for ${what}: send {"type":"authenticate","token"} first, within 10 s`,
      request: { params: z.object({ id: z.string() }) },
      responses: {
        101: { description: "Switching protocols. Close codes: 4401 unauthenticated, 4404 not found or not yours, 4429 too many frames" },
        ...errorResponses("UPGRADE_REQUIRED", "NOT_FOUND"),
      },
    });
  }
}

export type Broadcast = (sessionId: string, event: RoomEvent, options?: { key?: string }) => Promise<void>;

/**
 * Publishes to a session's room. Postgres already holds the change when this runs, so a room
 * that cannot be reached is logged and the request still succeeds: clients catch up by GET.
 */
export function createBroadcast(env: Pick<Bindings, "SESSION_ROOM">, logger: Logger): Broadcast {
  return async (sessionId, event, options) => {
    try {
      await roomStub(env, "session", sessionId).publish(event, options);
    } catch (error) {
      logger.error("room publish failed", { event: event.type, error });
    }
  };
}
