import type { Database } from "../lib/db";
import type { HttpErrorCode } from "../lib/errors";
import { ROOM_ID_PATTERN, type RoomAddress } from "./protocol";

/**
 * A kind of room, declared by the feature whose records the rooms belong to (a session's
 * room, an opener generation's …). The room object and the Worker know only this shape.
 */
export type RoomKind = {
  name: string;
  /** The socket's path under /api/v1, `:id` naming the room (SPEC §6), e.g. `/sessions/:id/ws`. */
  path: `/${string}/:id/ws`;
  /** What a room of this kind is, for the API document: "a session". */
  title: string;
  /** What `POST …/ws-ticket` answers for a room that is not the caller's (the kind's own 404). */
  notFound: HttpErrorCode;
  /**
   * Whether the live (not deleted) user with this Clerk id owns room `id`: their internal user id
   * if so (the per-user socket registry is keyed by it), else undefined. A missing room is a no.
   */
  owns(db: Database, id: string, clerkUserId: string): Promise<string | undefined>;
  /** Ids of every room of this kind a user ever had (deleted records too), in id order after `afterId`: the purge. */
  roomsOf(db: Database, userId: string, page: { afterId?: string; limit: number }): Promise<string[]>;
};

const API_PREFIX = "/api/v1";

/** The room a socket URL names, from the path the Worker forwards unchanged. */
export function roomFromPath(kinds: ReadonlyArray<RoomKind>, pathname: string): RoomAddress | undefined {
  if (!pathname.startsWith(`${API_PREFIX}/`)) return undefined;
  const path = pathname.slice(API_PREFIX.length).split("/");
  for (const kind of kinds) {
    const pattern = kind.path.split("/");
    if (pattern.length !== path.length) continue;
    const id = path[pattern.indexOf(":id")]!;
    if (pattern.every((part, i) => part === ":id" || part === path[i]) && ROOM_ID_PATTERN.test(id)) return { kind: kind.name, id };
  }
  return undefined;
}

/** The kind's routes under /api/v1 without the trailing `/ws`, e.g. `/sessions/:id`. */
export function roomBasePath(kind: RoomKind): string {
  return kind.path.slice(0, -"/ws".length);
}

/** The `wss://` URL of one room, as a 202 hands it to the client. */
export function roomUrl(publicBaseUrl: string, kind: RoomKind, id: string): string {
  const url = new URL(`${API_PREFIX}${kind.path.replace(":id", id)}`, publicBaseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}
