import { z } from "zod";
import type { RoomEventData, RoomEventType, ServerFrame, socketErrorCodeSchema } from "./frames";

/** Frames a client may send (SPEC §6). Anything else is answered with an `error` event. */
export const clientFrameSchema = z.discriminatedUnion("type", [
  // `afterSeq` here resumes atomically: the replay is sent before any live event.
  z.object({ type: z.literal("authenticate"), token: z.string().min(1).max(8192), afterSeq: z.number().int().min(0).optional() }),
  z.object({ type: z.literal("ping") }),
  z.object({ type: z.literal("resume"), afterSeq: z.number().int().min(0) }),
  z.object({ type: z.literal("cancel"), generationId: z.string().min(1).max(64) }),
]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;

/** Largest text frame a client may send; a Clerk token is about 1–2 KiB. */
export const MAX_FRAME_BYTES = 16 * 1024;

/** Close codes: HTTP-like 4xxx so clients can tell why without a reason string. */
export const CloseCode = {
  normal: 1000,
  unauthenticated: 4401,
  notFound: 4404,
  tooManyFrames: 4429,
} as const;

export type { RoomEventType } from "./frames";

/** An event as stored and sent: the publisher's data, spread, plus `type`, `seq` and `ts`. */
export type RoomFrame = Extract<ServerFrame, { type: RoomEventType }>;

/** What a publisher hands the room; the room adds `seq` and `ts`. Each type's data is declared in frames.ts. */
export type RoomEvent = { [T in RoomEventType]: { type: T; data: RoomEventData<T> } }[RoomEventType];

/** Error codes carried by `error` events (socket-level, not the HTTP catalog). */
export type SocketErrorCode = z.infer<typeof socketErrorCodeSchema>;

/** A room is one session's, or one opener generation's (SPEC §6 URLs). */
export type RoomKind = "session" | "opener";
export type RoomAddress = { kind: RoomKind; id: string };

/** Ids are CUID2: lower-case letters and digits. Anything else is no room at all. */
export const ROOM_ID_PATTERN = /^[a-z0-9]{2,40}$/;

/** The room a WebSocket URL names, from the path the Worker forwards unchanged. */
export function roomFromPath(pathname: string): RoomAddress | undefined {
  const match = /^\/api\/v1\/(?:sessions\/([^/]+)|magic-openers\/generations\/([^/]+))\/ws$/.exec(pathname);
  const id = match?.[1] ?? match?.[2];
  if (!id || !ROOM_ID_PATTERN.test(id)) return undefined;
  return { kind: match?.[1] ? "session" : "opener", id };
}

export function roomName(room: RoomAddress): string {
  return `${room.kind}:${room.id}`;
}

export function parseRoomFrames(frames: string[]): RoomFrame[] {
  return frames.map((frame) => JSON.parse(frame) as RoomFrame);
}
