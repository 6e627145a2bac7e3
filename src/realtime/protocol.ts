import { z } from "zod";
import type { RoomEventData, RoomEventType, ServerFrame } from "./frames";

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

export type { RoomEventType } from "./frames";

/** An event as stored and sent: the publisher's data, spread, plus `type`, `seq` and `ts`. */
export type RoomFrame = Extract<ServerFrame, { type: RoomEventType }>;

/** What a publisher hands the room; the room adds `seq` and `ts`. Each type's data is declared in frames.ts. */
export type RoomEvent = { [T in RoomEventType]: { type: T; data: RoomEventData<T> } }[RoomEventType];

/** How to publish: `key` makes a second publish of the same event a no-op; `cancelOf` asks after a generation's cancel. */
export type PublishOptions = { key?: string; cancelOf?: string };

/** A room's answer to a publish; `cancelRequested` only when the publish named `cancelOf`. */
export type PublishAnswer = { seq: number; duplicate: boolean; cancelRequested?: boolean };

/**
 * A room: one record's realtime channel, e.g. `{kind: "session", id}`. The kinds are declared
 * by the features that own them (see kinds.ts).
 */
export type RoomAddress = { kind: string; id: string };

/** Ids are CUID2: lower-case letters and digits. Anything else is no room at all. */
export const ROOM_ID_PATTERN = /^[a-z0-9]{2,40}$/;

export function roomName(room: RoomAddress): string {
  return `${room.kind}:${room.id}`;
}

export function parseRoomFrames(frames: string[]): RoomFrame[] {
  return frames.map((frame) => JSON.parse(frame) as RoomFrame);
}
