import type { Redis } from "@upstash/redis/cloudflare";
import { type RoomAddress, roomName } from "./protocol";

/**
 * Every user's open sockets, across rooms, in Redis: a sorted set `ws:u:<userId>` of
 * `<room>|<socketId>`, each scored by when that socket must close (its token's expiry). The room
 * adds a socket when it goes live, moves its score on a token refresh and removes it on close;
 * entries past their score are dropped on the next reservation, and the key itself expires with
 * its last entry. Two readers: the per-user cap (WS_MAX_SOCKETS_PER_USER), and an account
 * deletion, which asks each room listed to close that user's sockets. The key holds the user id,
 * so the account purge finds it.
 */
export type SocketEntry = { room: RoomAddress; socketId: string };

const userKey = (userId: string) => `ws:u:${userId}`;
const memberOf = (entry: SocketEntry) => `${roomName(entry.room)}|${entry.socketId}`;

function entryOf(member: string): SocketEntry | undefined {
  const match = /^([^:|]+):([^|]+)\|(.+)$/.exec(member);
  return match ? { room: { kind: match[1]!, id: match[2]! }, socketId: match[3]! } : undefined;
}

/**
 * Adds a socket unless its user already holds `cap` unexpired ones; answers whether it was added.
 * Two racing reservations may both be refused at the cap, never both admitted past it.
 */
export async function reserveSocket(redis: Redis, userId: string, entry: SocketEntry, expiresAt: number, cap: number, now = Date.now()): Promise<boolean> {
  const key = userKey(userId);
  const member = memberOf(entry);
  const [, , count] = await redis
    .multi()
    .zremrangebyscore(key, "-inf", now)
    .zadd(key, { score: expiresAt, member })
    .zcard(key)
    // A new key gets its last entry's expiry; a later one only moves it later (GT ignores a key without one).
    .pexpireat(key, expiresAt, "NX")
    .pexpireat(key, expiresAt, "GT")
    .exec<[number, number | null, number, 0 | 1, 0 | 1]>();
  if (count <= cap) return true;
  await redis.zrem(key, member);
  return false;
}

/** Moves a live socket's expiry (its owner sent a fresh token). */
export async function refreshSocket(redis: Redis, userId: string, entry: SocketEntry, expiresAt: number): Promise<void> {
  const key = userKey(userId);
  await redis.multi().zadd(key, { score: expiresAt, member: memberOf(entry) }).pexpireat(key, expiresAt, "GT").exec();
}

export async function releaseSocket(redis: Redis, userId: string, entry: SocketEntry): Promise<void> {
  await redis.zrem(userKey(userId), memberOf(entry));
}

/** The rooms in which the user holds sockets that have not expired, each once. */
export async function roomsOfUser(redis: Redis, userId: string, now = Date.now()): Promise<RoomAddress[]> {
  const members = await redis.zrange<string[]>(userKey(userId), now, "+inf", { byScore: true });
  const rooms = new Map<string, RoomAddress>();
  for (const entry of members.map(entryOf)) if (entry) rooms.set(roomName(entry.room), entry.room);
  return [...rooms.values()];
}
