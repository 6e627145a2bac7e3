import { DurableObject } from "cloudflare:workers";
import { verifySessionToken } from "../lib/auth";
import { type AppConfig, type Bindings, loadConfig } from "../lib/env";
import { type CloseErrorCode, errorCatalog, errorMessage, type FrameErrorCode } from "../lib/errors";
import { createLogger, type Logger } from "../lib/logger";
import { databaseFor, redisFor } from "../lib/services";
import { ROOM_GRANT_HEADER, type RoomGrant, roomGrantSchema } from "./access";
import type { DirectFrame } from "./frames";
import { type RoomKind, roomFromPath } from "./kinds";
import {
  type ClientFrame,
  clientFrameSchema,
  MAX_FRAME_BYTES,
  type PublishAnswer,
  type PublishOptions,
  type RoomAddress,
  type RoomEvent,
} from "./protocol";
import { refreshSocket, releaseSocket, reserveSocket } from "./registry";

/** Events kept for replay while a room is in use: at least the last 1,000, and everything younger than 24 h. */
const RETAIN_EVENTS = 1_000;
const RETAIN_MS = 24 * 60 * 60 * 1000;
const CLEANUP_EVERY_MS = 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;

/**
 * Everything the room knows about one socket. It lives in the socket's attachment, which
 * survives hibernation and eviction; nothing about a socket is kept only in memory.
 */
type SocketState = {
  room: RoomAddress;
  /**
   * `pending` until a valid `authenticate` frame (or at once `live`, for an upgrade the Worker
   * verified); `live` sockets receive room events; `closed` once the room closed it or saw it close.
   */
  phase: "pending" | "authenticating" | "live" | "closed";
  /**
   * While not live: when the socket is closed AUTH_TIMEOUT. The upgrade plus WS_AUTH_TIMEOUT_MS
   * for the token to arrive; once it has, as long again for the room to check it, so a token that
   * came in time is never cut off by the room's own slowness.
   */
  authDeadline: number;
  /** Set when live: whose socket it is, when its token expires, its entry in the user's registry. */
  owner?: RoomGrant;
  /** The room's latest seq when the socket went live: `resume` replays up to it, live covers the rest. */
  liveFromSeq: number;
  /**
   * What came while the socket's `authenticate` was being checked (a client may send `resume` and
   * `cancel` right behind it, without waiting for the answer): applied once it is live — a resume
   * as part of its atomic replay — and dropped with the socket if it is refused.
   */
  held?: { afterSeq?: number; cancels: string[] };
  windowStart: number;
  framesInWindow: number;
};

/**
 * One room per record of a room kind — a session, an opener generation (SPEC §6): it owns the
 * room's WebSockets (hibernation API), numbers every event, keeps them in SQLite for replay,
 * and is the only place events are published from — through RPC on the Worker's binding, never
 * over HTTP. The Worker's entry (src/index.ts) completes it with the kinds the features declare.
 */
export abstract class RoomObject extends DurableObject<Bindings> {
  /** The room kinds: how a socket URL names a room, and who owns one. */
  protected abstract readonly kinds: ReadonlyArray<RoomKind>;
  private readonly sql: SqlStorage;
  /** Derived from attachments and rebuilt after every wake-up; never the source of truth. */
  private liveSockets: Set<WebSocket> | undefined;
  /** Whether this instance made sure a cleanup alarm is booked (the alarm itself is durable). */
  private cleanupBooked = false;
  private tablesExist = false;
  /** The highest seq issued, once read from storage; this object is the only writer of events. */
  private lastSeq: number | undefined;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
  }

  /**
   * The room's tables, created on the first write: a room nobody wrote to (a socket that never
   * authenticated, a random id) keeps no storage, and a forgotten room starts empty again.
   */
  private tables(): SqlStorage {
    if (!this.hasTables()) {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
        frame TEXT NOT NULL,
        key TEXT UNIQUE
      )`);
      this.sql.exec(`CREATE TABLE IF NOT EXISTS cancellations (generation_id TEXT PRIMARY KEY, requested_at INTEGER NOT NULL)`);
      this.tablesExist = true;
    }
    return this.sql;
  }

  /** Whether anything was ever written here (reads of a room with no tables find nothing). */
  private hasTables(): boolean {
    this.tablesExist ||= this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").toArray().length > 0;
    return this.tablesExist;
  }

  /**
   * Accepts the WebSocket upgrade the Worker forwarded. With the Worker's grant (it verified a
   * bearer token or a ticket) the socket is live at once; without, it waits for an `authenticate`
   * frame and the room writes nothing for it: no table, no alarm. Its deadline is a timer, which
   * keeps the object awake (no hibernation) until then; if the object is evicted meanwhile (a
   * deploy, memory pressure), the timer is lost and the socket is closed AUTH_TIMEOUT by its next
   * frame, or goes when the client does; until then it receives nothing.
   */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const room = roomFromPath(this.kinds, url.pathname);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket" || !room) {
      return new Response("WebSocket upgrade expected", { status: 426 });
    }
    const grantHeader = request.headers.get(ROOM_GRANT_HEADER);
    const grant = grantHeader === null ? undefined : roomGrantSchema.parse(JSON.parse(grantHeader));
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const now = Date.now();
    const timeoutMs = this.config().WS_AUTH_TIMEOUT_MS;
    const state: SocketState = {
      room,
      phase: "pending",
      authDeadline: now + timeoutMs,
      liveFromSeq: 0,
      windowStart: now,
      framesInWindow: 0,
    };
    server.serializeAttachment(state);
    if (grant) {
      const afterSeq = url.searchParams.get("afterSeq");
      this.goLive(server, grant, afterSeq === null ? undefined : Number(afterSeq));
      await this.scheduleAlarm(grant.expiresAt);
    } else {
      setTimeout(() => this.closeIfUnauthenticated(server), timeoutMs);
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  // ---- RPC, reachable only through the SESSION_ROOM binding --------------------------------

  /**
   * Numbers, stores and sends one event to every live socket, in one synchronous step, so all
   * sockets see the same order. With a `key`, a second publish of the same event (a job
   * delivered twice) returns the first one's seq and sends nothing. With `cancelOf`, the answer
   * also says whether a socket asked to cancel that generation: a run that is streaming hears
   * of a cancel from its own publishes and need not ask separately (see `watchForCancel`).
   */
  async publish(event: RoomEvent, options: PublishOptions = {}): Promise<PublishAnswer> {
    const sql = this.tables();
    const cancel = options.cancelOf === undefined ? {} : { cancelRequested: this.cancelRequested(options.cancelOf) };
    // One statement per event: the seq is the next one, known before the insert, so the frame
    // that carries it is stored as it is written; a key already stored makes it a no-op.
    const seq = (this.lastSeq ??= this.latestSeq()) + 1;
    const ts = Date.now();
    const frame = JSON.stringify({ ...event.data, type: event.type, seq, ts });
    const inserted = sql
      .exec("INSERT INTO events (seq, ts, frame, key) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING seq", seq, ts, frame, options.key ?? null)
      .toArray().length > 0;
    if (!inserted) {
      const existing = sql.exec<{ seq: number }>("SELECT seq FROM events WHERE key = ?", options.key ?? null).one();
      return { seq: existing.seq, duplicate: true, ...cancel };
    }
    this.lastSeq = seq;
    for (const socket of this.live()) {
      // An alarm may run late: a socket whose token expired gets nothing more.
      if (this.expired(socket, ts)) this.closeWith(socket, "TOKEN_EXPIRED");
      else this.trySend(socket, frame);
    }
    if (!this.cleanupBooked) {
      await this.scheduleAlarm(ts + CLEANUP_EVERY_MS);
      this.cleanupBooked = true;
    }
    return { seq, duplicate: false, ...cancel };
  }

  /**
   * The stored events after `afterSeq`, oldest first, as the JSON frames sockets receive (for
   * the Worker and tests; sockets use `resume`). Parse them with `parseRoomFrames`.
   */
  async eventsAfter(afterSeq: number, limit = 1_000): Promise<string[]> {
    if (!this.hasTables()) return [];
    return this.sql
      .exec<{ frame: string }>("SELECT frame FROM events WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit)
      .toArray()
      .map((row) => row.frame);
  }

  /** Whether a socket asked to cancel this generation; its run asks while it publishes nothing. */
  async isCancelRequested(generationId: string): Promise<boolean> {
    return this.cancelRequested(generationId);
  }

  /**
   * The room's record is gone (its session or account deleted, or purged): every socket is
   * closed with `code`, and the stored events, cancellations and alarm are deleted. A later
   * publish starts an empty room again. Answers how many sockets it closed.
   */
  async forget(code: CloseErrorCode): Promise<{ closedSockets: number }> {
    const sockets = this.ctx.getWebSockets().filter((socket) => socket.readyState === WebSocket.OPEN);
    for (const socket of sockets) this.closeWith(socket, code);
    this.liveSockets = undefined;
    await this.deleteStorage();
    return { closedSockets: sockets.length };
  }

  /** Closes the open sockets of one user with `code` (their account was deleted); the room keeps its events. */
  async closeUserSockets(userId: string, code: CloseErrorCode): Promise<{ closedSockets: number }> {
    const sockets = this.ctx
      .getWebSockets()
      .filter((socket) => socket.readyState === WebSocket.OPEN && (socket.deserializeAttachment() as SocketState | null)?.owner?.userId === userId);
    for (const socket of sockets) this.closeWith(socket, code);
    return { closedSockets: sockets.length };
  }

  // ---- WebSocket events (hibernation API) ----------------------------------------------------

  override async webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const state = socket.deserializeAttachment() as SocketState;
    if (state.phase === "closed") return;
    // The deadlines hold even when their timer or alarm was lost or is late (eviction, hibernation).
    if (state.phase !== "live" && state.authDeadline <= Date.now()) return this.closeWith(socket, "AUTH_TIMEOUT");
    if (this.expired(socket)) return this.closeWith(socket, "TOKEN_EXPIRED");
    if (!this.withinRate(socket, state)) return;

    const size = typeof message === "string" ? new TextEncoder().encode(message).byteLength : message.byteLength;
    if (size > MAX_FRAME_BYTES) return this.sendError(socket, "FRAME_TOO_LARGE", `Frames are at most ${MAX_FRAME_BYTES} bytes`);
    const frame = typeof message === "string" ? parseFrame(message) : undefined;
    if (!frame) return this.sendError(socket, "MALFORMED_FRAME");

    if (frame.type === "ping") return this.reply(socket, { type: "pong", ts: Date.now() });
    if (frame.type === "authenticate") return this.authenticate(socket, state, frame.token, frame.afterSeq);
    if (state.phase === "authenticating") return this.hold(socket, frame);
    if (state.phase !== "live") {
      // SPEC §6: `authenticate` comes first. Closing tells a buggy client at once, not in 10 s.
      return this.closeWith(socket, "AUTH_REQUIRED");
    }
    if (frame.type === "resume") return this.replay(socket, state, frame.afterSeq);
    return this.requestCancel(frame.generationId);
  }

  override async webSocketClose(socket: WebSocket, code: number): Promise<void> {
    // 1005/1006 describe a missing close frame and may not be sent back.
    this.closeSocket(socket, code === 1005 || code === 1006 ? 1000 : code, "");
  }

  override async webSocketError(socket: WebSocket): Promise<void> {
    this.liveSockets?.delete(socket);
    this.release(socket);
  }

  /**
   * Closes live sockets whose token expired (and any unauthenticated one found overdue), then
   * either deletes the room's storage — no open socket, and no event newer than
   * ROOM_RETENTION_HOURS — or trims old events. Books the next alarm: the earliest token expiry
   * of the live sockets, or the next cleanup while the room holds anything.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const deadlines: number[] = [];
    let open = 0;
    for (const socket of this.ctx.getWebSockets()) {
      const state = socket.deserializeAttachment() as SocketState | null;
      // A closing socket waits for nothing. The runtime lists it until the client answers the
      // close; counting it would book this alarm again at its past deadline, and for a client
      // that never answers, run the alarm without end (and keep the room from hibernating).
      if (!state || state.phase === "closed" || socket.readyState !== WebSocket.OPEN) continue;
      if (state.owner) {
        if (state.owner.expiresAt <= now) {
          this.closeWith(socket, "TOKEN_EXPIRED");
        } else {
          open++;
          deadlines.push(state.owner.expiresAt);
        }
        continue;
      }
      // Unauthenticated sockets book no alarm (their timer closes them); one found overdue goes now.
      // The close frame leaves now. The connection itself ends when the room next hibernates
      // (about 10 s later): after a close the server started, workerd hands the native socket
      // back to the JS WebSocket and frees it only with that object, and the pipe behind a socket
      // whose first frame is the client's close reply keeps reading past it. No JS call releases it
      // sooner; a socket that sent any frame first is not affected.
      if (state.authDeadline <= now) this.closeWith(socket, "AUTH_TIMEOUT");
      else open++;
    }
    if (this.hasTables()) {
      const newest = this.sql.exec<{ ts: number | null }>("SELECT MAX(ts) AS ts FROM events").one().ts;
      if (open === 0 && (newest ?? 0) < now - this.config().ROOM_RETENTION_HOURS * HOUR_MS) {
        // Idle past its retention: the room forgets everything, and books nothing more.
        await this.deleteStorage();
        return;
      }
      this.sql.exec(
        "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ? AND ts < ?",
        RETAIN_EVENTS,
        now - RETAIN_MS,
      );
      // A generation runs for minutes at most: a day-old cancel request has nobody left to stop.
      this.sql.exec("DELETE FROM cancellations WHERE requested_at < ?", now - RETAIN_MS);
      deadlines.push(now + CLEANUP_EVERY_MS);
    }
    if (deadlines.length > 0) await this.ctx.storage.setAlarm(Math.min(...deadlines));
  }

  // ---- internals -------------------------------------------------------------------------

  private config(): AppConfig {
    const loaded = loadConfig(this.env);
    if (!loaded.ok) throw new Error(`invalid configuration: ${loaded.invalidVariables.join(", ")}`);
    return loaded.config;
  }

  private live(): Set<WebSocket> {
    this.liveSockets ??= new Set(
      this.ctx.getWebSockets().filter((socket) => (socket.deserializeAttachment() as SocketState | null)?.phase === "live"),
    );
    return this.liveSockets;
  }

  private logger(room: RoomAddress): Logger {
    return createLogger({ level: this.config().LOG_LEVEL, base: { room: room.kind } });
  }

  /** The session behind a valid token; otherwise the socket is closed TOKEN_INVALID. */
  private async verifyToken(socket: WebSocket, token: string) {
    try {
      return await verifySessionToken(token, this.config());
    } catch {
      this.closeWith(socket, "TOKEN_INVALID");
      return undefined;
    }
  }

  /** The owner's user id if this Clerk user owns the room; otherwise the socket is closed (4404, or 1011 when the check fails). */
  private async ownerOf(socket: WebSocket, room: RoomAddress, clerkUserId: string): Promise<string | undefined> {
    let userId: string | undefined;
    try {
      const kind = this.kinds.find((candidate) => candidate.name === room.kind);
      userId = kind && (await kind.owns(databaseFor(this.config()), room.id, clerkUserId));
    } catch (error) {
      this.logger(room).error("room ownership check failed", { error });
      this.closeWith(socket, "ROOM_UNAVAILABLE");
      return undefined;
    }
    if (!userId) this.closeWith(socket, "ROOM_NOT_FOUND");
    return userId;
  }

  private async authenticate(socket: WebSocket, state: SocketState, token: string, afterSeq: number | undefined): Promise<void> {
    if (state.phase === "live") return this.refresh(socket, state, token, afterSeq);
    // One verification at a time; the deadline still runs for a client that keeps sending.
    if (state.phase !== "pending") return;
    this.update(socket, { phase: "authenticating", authDeadline: Date.now() + this.config().WS_AUTH_TIMEOUT_MS });
    const session = await this.verifyToken(socket, token);
    const userId = session && (await this.ownerOf(socket, state.room, session.clerkUserId));
    if (!session || !userId) return;
    const grant: RoomGrant = { userId, clerkUserId: session.clerkUserId, expiresAt: session.expiresAt, socketId: crypto.randomUUID() };
    let admitted = true;
    try {
      admitted = await reserveSocket(redisFor(this.config()), grant.userId, { room: state.room, socketId: grant.socketId }, grant.expiresAt, this.config().WS_MAX_SOCKETS_PER_USER);
    } catch (error) {
      this.logger(state.room).warn("socket registry unavailable; socket not counted", { error });
    }
    if (!admitted) return this.closeWith(socket, "TOO_MANY_SOCKETS");
    if (socket.readyState !== WebSocket.OPEN) {
      // The client left while it was being checked.
      await releaseSocket(redisFor(this.config()), grant.userId, { room: state.room, socketId: grant.socketId }).catch(() => undefined);
      return;
    }
    const { held } = socket.deserializeAttachment() as SocketState;
    // The earlier of the two resume points the client gave, if it gave any.
    const resumePoints = [afterSeq, held?.afterSeq].filter((seq) => seq !== undefined);
    this.goLive(socket, grant, resumePoints.length > 0 ? Math.min(...resumePoints) : undefined);
    for (const generationId of held?.cancels ?? []) this.requestCancel(generationId);
    await this.scheduleAlarm(grant.expiresAt);
  }

  /** Switches a socket to live and tells it so, with an atomic replay after `afterSeq` when asked. */
  private goLive(socket: WebSocket, owner: RoomGrant, afterSeq: number | undefined): void {
    // No await here: the seq read and the switch to live happen before any publish.
    const liveFromSeq = this.latestSeq();
    this.update(socket, { phase: "live", liveFromSeq, owner, held: undefined });
    this.live().add(socket);
    this.reply(socket, { type: "authenticated", seq: liveFromSeq, ts: Date.now() });
    if (afterSeq !== undefined) this.replay(socket, socket.deserializeAttachment() as SocketState, afterSeq);
  }

  /**
   * `authenticate` on a live socket: a valid token of the same user, who still owns the room,
   * moves the socket's expiry to the new token's and is answered `authenticated` again. Another
   * user's token closes the socket (TOKEN_INVALID), as does an invalid one.
   */
  private async refresh(socket: WebSocket, state: SocketState, token: string, afterSeq: number | undefined): Promise<void> {
    const current = state.owner!;
    const session = await this.verifyToken(socket, token);
    if (!session) return;
    if (session.clerkUserId !== current.clerkUserId) return this.closeWith(socket, "TOKEN_INVALID");
    // Checked again: the account may have been deleted (a token minted since still verifies).
    if (!(await this.ownerOf(socket, state.room, session.clerkUserId))) return;
    const latest = socket.deserializeAttachment() as SocketState;
    if (socket.readyState !== WebSocket.OPEN || latest.phase !== "live" || !latest.owner) return;
    const expiresAt = Math.max(latest.owner.expiresAt, session.expiresAt);
    this.update(socket, { owner: { ...latest.owner, expiresAt } });
    this.reply(socket, { type: "authenticated", seq: this.latestSeq(), ts: Date.now() });
    if (afterSeq !== undefined) this.replay(socket, latest, afterSeq);
    await refreshSocket(redisFor(this.config()), current.userId, { room: state.room, socketId: current.socketId }, expiresAt).catch((error: unknown) =>
      this.logger(state.room).warn("socket registry unavailable; expiry not moved", { error }),
    );
    // The alarm booked for the old expiry finds this one later and books it then.
    await this.scheduleAlarm(expiresAt);
  }

  /** Closes a socket still not live at its deadline (waiting again if the deadline moved: its token is being checked). */
  private closeIfUnauthenticated(socket: WebSocket): void {
    const state = socket.deserializeAttachment() as SocketState | null;
    if (!state || (state.phase !== "pending" && state.phase !== "authenticating") || socket.readyState !== WebSocket.OPEN) return;
    const left = state.authDeadline - Date.now();
    if (left > 0) setTimeout(() => this.closeIfUnauthenticated(socket), left);
    else this.closeWith(socket, "AUTH_TIMEOUT");
  }

  /** Whether a live socket's token has expired (it must re-authenticate before that). */
  private expired(socket: WebSocket, now = Date.now()): boolean {
    const owner = (socket.deserializeAttachment() as SocketState | null)?.owner;
    return owner !== undefined && owner.expiresAt <= now;
  }

  /** Replays stored events in (afterSeq, liveFromSeq]; later ones reached this socket live. */
  private replay(socket: WebSocket, state: SocketState, afterSeq: number): void {
    if (!this.hasTables()) return;
    const oldest = this.sql.exec<{ seq: number | null }>("SELECT MIN(seq) AS seq FROM events").one().seq;
    if (oldest !== null && afterSeq < oldest - 1 && afterSeq < state.liveFromSeq) {
      this.sendError(socket, "REPLAY_INCOMPLETE", `Events up to ${oldest - 1} are no longer held; refetch the session`);
    }
    const rows = this.sql.exec<{ frame: string }>(
      "SELECT frame FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
      afterSeq,
      state.liveFromSeq,
    );
    for (const row of rows) this.trySend(socket, row.frame);
  }

  /** Keeps a `resume` or `cancel` that came while the socket's token was being checked (see `held`). */
  private hold(socket: WebSocket, frame: Extract<ClientFrame, { type: "resume" | "cancel" }>): void {
    const held = (socket.deserializeAttachment() as SocketState).held ?? { cancels: [] };
    if (frame.type === "resume") held.afterSeq = Math.min(held.afterSeq ?? frame.afterSeq, frame.afterSeq);
    else if (!held.cancels.includes(frame.generationId)) held.cancels.push(frame.generationId);
    this.update(socket, { held });
  }

  private cancelRequested(generationId: string): boolean {
    if (!this.hasTables()) return false;
    return this.sql.exec("SELECT 1 FROM cancellations WHERE generation_id = ?", generationId).toArray().length > 0;
  }

  /** The hook a running generation listens to (see `isCancelRequested`). */
  private requestCancel(generationId: string): void {
    this.tables().exec("INSERT OR IGNORE INTO cancellations (generation_id, requested_at) VALUES (?, ?)", generationId, Date.now());
  }

  /** Counts the frame; past the per-second limit the socket gets an error and is closed. */
  private withinRate(socket: WebSocket, state: SocketState): boolean {
    const now = Date.now();
    const fresh = now - state.windowStart >= 1_000;
    const framesInWindow = fresh ? 1 : state.framesInWindow + 1;
    this.update(socket, { windowStart: fresh ? now : state.windowStart, framesInWindow });
    if (framesInWindow <= this.config().WS_MAX_FRAMES_PER_SECOND) return true;
    this.sendError(socket, "RATE_LIMITED");
    this.closeWith(socket, "TOO_MANY_FRAMES");
    return false;
  }

  private latestSeq(): number {
    if (!this.hasTables()) return 0;
    // sqlite_sequence keeps the highest seq ever issued, even after old events were trimmed.
    const row = this.sql.exec<{ seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'").toArray()[0];
    return row?.seq ?? 0;
  }

  private update(socket: WebSocket, patch: Partial<SocketState>): void {
    // Re-read: an await elsewhere may have changed the attachment since the caller read it.
    socket.serializeAttachment({ ...(socket.deserializeAttachment() as SocketState), ...patch });
  }

  /**
   * Direct replies carry the room's latest seq (they do not take a new one) and a timestamp;
   * a socket that has not authenticated learns nothing about the room, not even its seq.
   */
  private sendError(socket: WebSocket, code: FrameErrorCode, message = errorMessage(code)): void {
    const live = (socket.deserializeAttachment() as SocketState).phase === "live";
    this.reply(socket, { type: "error", seq: live ? this.latestSeq() : 0, ts: Date.now(), code, message });
  }

  private reply(socket: WebSocket, frame: DirectFrame): void {
    this.trySend(socket, JSON.stringify(frame));
  }

  private trySend(socket: WebSocket, frame: string): void {
    try {
      socket.send(frame);
    } catch {
      // The socket closed under us; its close handler cleans up.
      this.liveSockets?.delete(socket);
    }
  }

  /** Closes with the catalog's close code; the reason is the code, for a client that reads it. */
  private closeWith(socket: WebSocket, code: CloseErrorCode): void {
    this.closeSocket(socket, errorCatalog[code].close, code);
  }

  private closeSocket(socket: WebSocket, code: number, reason: string): void {
    this.liveSockets?.delete(socket);
    this.release(socket);
    try {
      socket.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  /** Marks the socket closed and takes it out of its user's registry (once). */
  private release(socket: WebSocket): void {
    const state = socket.deserializeAttachment() as SocketState | null;
    if (!state || state.phase === "closed") return;
    try {
      socket.serializeAttachment({ ...state, phase: "closed" });
    } catch {
      // The socket is gone; its state with it.
    }
    const owner = state.owner;
    if (!owner) return;
    this.ctx.waitUntil(
      releaseSocket(redisFor(this.config()), owner.userId, { room: state.room, socketId: owner.socketId }).catch((error: unknown) =>
        // Its entry expires with the token anyway.
        this.logger(state.room).warn("socket registry unavailable; entry left to expire", { error }),
      ),
    );
  }

  private async deleteStorage(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.tablesExist = false;
    this.lastSeq = undefined;
    this.cleanupBooked = false;
  }

  private async scheduleAlarm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }
}

function parseFrame(text: string): ClientFrame | undefined {
  try {
    const parsed = clientFrameSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
