import { env, runInDurableObject } from "cloudflare:test";
import { expect, onTestFinished } from "vitest";
import { sessions, users } from "../src/db/schema";
import { serverFrameSchema } from "../src/realtime/frames";
import type { RoomAddress } from "../src/realtime/protocol";
import { roomStub } from "../src/realtime/rooms";
import { call, clerkId, mintToken, testDb } from "./helpers";
import { watchSocket } from "./socket";

export { type Frame, isRoomEvent } from "./socket";

/**
 * Each test upgrade comes from an address of its own, so the per-IP upgrade limit meets only the
 * test that aims at it.
 */
export function randomIp(): string {
  const [a, b, c] = crypto.getRandomValues(new Uint8Array(3));
  return `10.${a}.${b}.${c}`;
}

/** A WebSocket upgrade of a room's URL, answered however the Worker answers it (101 or a refusal). */
export function upgrade(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return call(path, { headers: { Upgrade: "websocket", "CF-Connecting-IP": randomIp(), ...headers } });
}

/**
 * A test client for the Worker's WebSocket routes in the pool: collects frames and the close
 * event. When the test ends, every frame it received must be one that src/realtime/frames.ts
 * declares, so each test that watches a socket also checks the frames' shapes.
 */
export async function openSocket(path: string, headers: Record<string, string> = {}) {
  const response = await upgrade(path, headers);
  const ws = response.webSocket;
  if (response.status !== 101 || !ws) throw new Error(`no upgrade: ${response.status} ${await response.text()}`);
  ws.accept();
  const socket = watchSocket(ws);
  onTestFinished(() => {
    const undeclared = socket.frames.flatMap((frame) => {
      const parsed = serverFrameSchema.safeParse(frame);
      return parsed.success ? [] : [{ frame, issues: parsed.error.issues }];
    });
    expect(undeclared).toEqual([]);
  });
  return { ws, ...socket };
}

export type TestSocket = Awaited<ReturnType<typeof openSocket>>;

/** A socket on a room's URL that sent `authenticate` as its first frame and was answered `authenticated`. */
export async function authenticatedSocket(path: string, token: string, extra: Record<string, unknown> = {}): Promise<TestSocket> {
  const socket = await openSocket(path);
  socket.send({ type: "authenticate", token, ...extra });
  await socket.frame("authenticated");
  return socket;
}

/** A user with a ready text session: its Clerk id, internal id, session id and a token. */
export async function seedSession(options: { deleted?: boolean; sub?: string } = {}) {
  const sub = options.sub ?? clerkId();
  const [user] = await testDb().insert(users).values({ clerkId: sub }).onConflictDoUpdate({ target: users.clerkId, set: { clerkId: sub } }).returning();
  const [session] = await testDb()
    .insert(sessions)
    .values({ userId: user!.id, type: "text", status: "ready", deletedAt: options.deleted ? new Date() : null })
    .returning();
  return { sub, userId: user!.id, sessionId: session!.id, token: await mintToken(sub) };
}

/** What a room's object holds: its tables, its alarm and its sockets (a room nobody had a right to holds no table and no alarm). */
export function storageOf(room: RoomAddress) {
  return runInDurableObject(roomStub(env, room), async (_instance, state) => ({
    tables: state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().length,
    alarm: await state.storage.getAlarm(),
    sockets: state.getWebSockets().length,
  }));
}
