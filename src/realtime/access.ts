import type { Redis } from "@upstash/redis/cloudflare";
import { z } from "zod";
import { toBase64Url } from "../lib/encoding";
import { sha256Hex } from "../lib/hash";
import { type RoomAddress, roomName } from "./protocol";

/**
 * How the Worker tells a room that it verified an upgrade: a request header carrying the grant.
 * The Worker deletes this header from every client request before it reaches a room, and sets
 * it only after checking a bearer token or a ticket, so a room can trust it.
 */
export const ROOM_GRANT_HEADER = "X-Room-Grant";

/** Whose socket it is, until when its token holds, and its entry in the user's socket registry. */
export const roomGrantSchema = z.object({
  userId: z.string(),
  clerkUserId: z.string(),
  /** The token's `exp` (ms): past it the room closes the socket unless a fresh token came. */
  expiresAt: z.number(),
  socketId: z.string(),
});
export type RoomGrant = z.infer<typeof roomGrantSchema>;

/** How long a ticket can be used (it is used within a second by a client that asked for it). */
export const TICKET_TTL_MS = 60_000;

/** `<userId>.<256 random bits, base64url>`; the user id puts the user in the ticket's Redis key. */
const TICKET_PATTERN = /^([a-z0-9]{2,40})\.([A-Za-z0-9_-]{43})$/;

const ticketRecordSchema = z.object({
  room: z.string(),
  clerkUserId: z.string(),
  tokenExpiresAt: z.number(),
  expiresAt: z.number(),
});

export type TicketHolder = { userId: string; clerkUserId: string; tokenExpiresAt: number };

// Only a hash of the secret is stored: a Redis dump holds no usable ticket.
const ticketKey = async (userId: string, secret: string) => `ws:t:${userId}:${await sha256Hex(secret)}`;

/**
 * A single-use ticket to open `room`'s socket as `holder`, for clients that cannot set headers on
 * an upgrade. It lasts TICKET_TTL_MS, or less when the token it was asked with expires sooner.
 */
export async function issueTicket(
  redis: Redis,
  room: RoomAddress,
  holder: TicketHolder,
  options: { ttlMs?: number; now?: number } = {},
): Promise<{ ticket: string; expiresAt: number }> {
  const now = options.now ?? Date.now();
  const expiresAt = Math.min(now + (options.ttlMs ?? TICKET_TTL_MS), holder.tokenExpiresAt);
  const secret = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  const record: z.infer<typeof ticketRecordSchema> = { room: roomName(room), clerkUserId: holder.clerkUserId, tokenExpiresAt: holder.tokenExpiresAt, expiresAt };
  await redis.set(await ticketKey(holder.userId, secret), record, { px: Math.max(1, expiresAt - now) });
  return { ticket: `${holder.userId}.${secret}`, expiresAt };
}

/**
 * Uses a ticket up (GETDEL: a second use finds nothing) and answers its holder, if it was issued
 * for this room and has not expired; anything else — forged, used, expired, another room's — is
 * undefined. Throws when Redis cannot be reached.
 */
export async function redeemTicket(redis: Redis, ticket: string, room: RoomAddress, now = Date.now()): Promise<TicketHolder | undefined> {
  const match = TICKET_PATTERN.exec(ticket);
  if (!match) return undefined;
  const [, userId, secret] = match as unknown as [string, string, string];
  const parsed = ticketRecordSchema.safeParse(await redis.getdel(await ticketKey(userId, secret)));
  if (!parsed.success || parsed.data.room !== roomName(room) || parsed.data.expiresAt <= now) return undefined;
  return { userId, clerkUserId: parsed.data.clerkUserId, tokenExpiresAt: parsed.data.tokenExpiresAt };
}
