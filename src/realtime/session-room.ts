import { DurableObject } from "cloudflare:workers";
import { verifySessionToken } from "../lib/auth";
import { type AppConfig, type Bindings, loadConfig } from "../lib/env";
import { type CloseErrorCode, errorCatalog, errorMessage, type FrameErrorCode } from "../lib/errors";
import { createLogger } from "../lib/logger";
import { databaseFor } from "../lib/services";
import type { DirectFrame } from "./frames";
import { type RoomKind, roomFromPath } from "./kinds";
import {
  type ClientFrame,
  clientFrameSchema,
  MAX_FRAME_BYTES,
  type RoomAddress,
  type RoomEvent,
} from "./protocol";

/** Events kept for replay: at least the last 1,000, and everything younger than 24 h. */
const RETAIN_EVENTS = 1_000;
const RETAIN_MS = 24 * 60 * 60 * 1000;
const CLEANUP_EVERY_MS = 60 * 60 * 1000;

/**
 * Everything the room knows about one socket. It lives in the socket's attachment, which
 * survives hibernation and eviction; nothing about a socket is kept only in memory.
 */
type SocketState = {
  room: RoomAddress;
  /** `pending` until a valid `authenticate` frame; then `live` and receiving room events. */
  phase: "pending" | "authenticating" | "live";
  authDeadline: number;
  /** The room's latest seq when the socket went live: `resume` replays up to it, live covers the rest. */
  liveFromSeq: number;
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

  /** Accepts the WebSocket upgrade the Worker forwarded unchanged. */
  override async fetch(request: Request): Promise<Response> {
    const room = roomFromPath(this.kinds, new URL(request.url).pathname);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket" || !room) {
      return new Response("WebSocket upgrade expected", { status: 426 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const now = Date.now();
    const state: SocketState = {
      room,
      phase: "pending",
      authDeadline: now + this.config().WS_AUTH_TIMEOUT_MS,
      liveFromSeq: 0,
      windowStart: now,
      framesInWindow: 0,
    };
    server.serializeAttachment(state);
    await this.scheduleAlarm(state.authDeadline);
    return new Response(null, { status: 101, webSocket: client });
  }

  // ---- RPC, reachable only through the SESSION_ROOM binding --------------------------------

  /**
   * Numbers, stores and sends one event to every live socket, in one synchronous step, so all
   * sockets see the same order. With a `key`, a second publish of the same event (a job
   * delivered twice) returns the first one's seq and sends nothing.
   */
  async publish(event: RoomEvent, options: { key?: string } = {}): Promise<{ seq: number; duplicate: boolean }> {
    const sql = this.tables();
    if (options.key !== undefined) {
      const existing = sql.exec<{ seq: number }>("SELECT seq FROM events WHERE key = ?", options.key).toArray()[0];
      if (existing) return { seq: existing.seq, duplicate: true };
    }
    const ts = Date.now();
    const [{ seq }] = sql
      .exec<{ seq: number }>("INSERT INTO events (ts, frame, key) VALUES (?, '', ?) RETURNING seq", ts, options.key ?? null)
      .toArray() as [{ seq: number }];
    const frame = JSON.stringify({ ...event.data, type: event.type, seq, ts });
    sql.exec("UPDATE events SET frame = ? WHERE seq = ?", frame, seq);
    for (const socket of this.live()) this.trySend(socket, frame);
    if (!this.cleanupBooked) {
      await this.scheduleAlarm(ts + CLEANUP_EVERY_MS);
      this.cleanupBooked = true;
    }
    return { seq, duplicate: false };
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

  /** Whether a socket asked to cancel this generation; the generation's runner polls it. */
  async isCancelRequested(generationId: string): Promise<boolean> {
    if (!this.hasTables()) return false;
    return this.sql.exec("SELECT 1 FROM cancellations WHERE generation_id = ?", generationId).toArray().length > 0;
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
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.tablesExist = false;
    this.cleanupBooked = false;
    return { closedSockets: sockets.length };
  }

  // ---- WebSocket events (hibernation API) ----------------------------------------------------

  override async webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const state = socket.deserializeAttachment() as SocketState;
    if (!this.withinRate(socket, state)) return;

    const size = typeof message === "string" ? new TextEncoder().encode(message).byteLength : message.byteLength;
    if (size > MAX_FRAME_BYTES) return this.sendError(socket, "FRAME_TOO_LARGE", `Frames are at most ${MAX_FRAME_BYTES} bytes`);
    const frame = typeof message === "string" ? parseFrame(message) : undefined;
    if (!frame) return this.sendError(socket, "MALFORMED_FRAME");

    if (frame.type === "ping") return this.reply(socket, { type: "pong", ts: Date.now() });
    if (frame.type === "authenticate") return this.authenticate(socket, state, frame.token, frame.afterSeq);
    if (state.phase !== "live") {
      // SPEC §6: `authenticate` comes first. Closing tells a buggy client at once, not in 10 s.
      return this.closeWith(socket, "AUTH_REQUIRED");
    }
    if (frame.type === "resume") return this.replay(socket, state, frame.afterSeq);
    return this.requestCancel(frame.generationId);
  }

  override async webSocketClose(socket: WebSocket, code: number): Promise<void> {
    this.liveSockets?.delete(socket);
    // 1005/1006 describe a missing close frame and may not be sent back.
    this.closeSocket(socket, code === 1005 || code === 1006 ? 1000 : code, "");
  }

  override async webSocketError(socket: WebSocket): Promise<void> {
    this.liveSockets?.delete(socket);
  }

  /** Closes sockets that never authenticated, trims old events, and books the next alarm. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const deadlines: number[] = [];
    for (const socket of this.ctx.getWebSockets()) {
      const state = socket.deserializeAttachment() as SocketState | null;
      // A closing socket waits for nothing. The runtime lists it until the client answers the
      // close; counting it would book this alarm again at its past deadline, and for a client
      // that never answers, run the alarm without end (and keep the room from hibernating).
      if (!state || state.phase === "live" || socket.readyState !== WebSocket.OPEN) continue;
      // The close frame leaves now. The connection itself ends when the room next hibernates
      // (about 10 s later): after a close the server started, workerd hands the native socket
      // back to the JS WebSocket and frees it only with that object, and the pipe behind a socket
      // whose first frame is the client's close reply keeps reading past it. No JS call releases it
      // sooner; a socket that sent any frame first is not affected.
      if (state.authDeadline <= now) this.closeWith(socket, "AUTH_TIMEOUT");
      else deadlines.push(state.authDeadline);
    }
    let hasEvents = false;
    if (this.hasTables()) {
      this.sql.exec(
        "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ? AND ts < ?",
        RETAIN_EVENTS,
        now - RETAIN_MS,
      );
      // A generation runs for minutes at most: a day-old cancel request has nobody left to stop.
      this.sql.exec("DELETE FROM cancellations WHERE requested_at < ?", now - RETAIN_MS);
      hasEvents = this.sql.exec("SELECT 1 FROM events LIMIT 1").toArray().length > 0;
    }
    const next = Math.min(...deadlines, hasEvents ? now + CLEANUP_EVERY_MS : Number.POSITIVE_INFINITY);
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(next);
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

  private async authenticate(socket: WebSocket, state: SocketState, token: string, afterSeq: number | undefined): Promise<void> {
    if (state.phase !== "pending") {
      return this.sendError(socket, "ALREADY_AUTHENTICATED");
    }
    this.update(socket, { phase: "authenticating" });
    const config = this.config();
    let clerkUserId: string;
    try {
      clerkUserId = (await verifySessionToken(token, config)).clerkUserId;
    } catch {
      return this.closeWith(socket, "TOKEN_INVALID");
    }
    let owner: boolean;
    try {
      const kind = this.kinds.find((candidate) => candidate.name === state.room.kind);
      owner = kind !== undefined && (await kind.owns(databaseFor(config), state.room.id, clerkUserId));
    } catch (error) {
      createLogger({ level: config.LOG_LEVEL, base: { room: state.room.kind } }).error("room ownership check failed", { error });
      return this.closeWith(socket, "ROOM_UNAVAILABLE");
    }
    if (!owner) return this.closeWith(socket, "ROOM_NOT_FOUND");

    // No await from here on: the seq read and the switch to live happen before any publish.
    const liveFromSeq = this.latestSeq();
    this.update(socket, { phase: "live", liveFromSeq });
    this.live().add(socket);
    this.reply(socket, { type: "authenticated", seq: liveFromSeq, ts: Date.now() });
    if (afterSeq !== undefined) this.replay(socket, { ...state, liveFromSeq }, afterSeq);
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
    try {
      socket.close(code, reason);
    } catch {
      // Already closed.
    }
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
