// Malformed client frames for the bad-input part of the resilience suite: every frame type
// clientFrameSchema declares, broken in every way, and what SPEC §6 says the room answers.
import fc from "fast-check";
import { clientFrameSchema, MAX_FRAME_BYTES } from "../../src/realtime/protocol";
import { callAs, json } from "../helpers";
import { authenticatedSocket, openSocket, type TestSocket } from "../ws";
import { breakValue, invalidJson, jsonText, type Resolve, validValue } from "./arbitraries";
import { DEADLINE_MS, jsonSchemaOf, type Owner, provision } from "./bad-requests";
import { CANARY } from "./leaks";

export const FRAME_CLASSES = ["binary", "oversize", "wrong-type", "boundary", "unknown-type", "invalid-json", "empty", "unicode", "proto-keys"] as const;
export type FrameClass = (typeof FRAME_CLASSES)[number];
export type Phase = "before authenticate" | "after authenticate";

/** What SPEC §6 and the room promise for one frame: an answer and the socket open, or a close. */
type Expected = { kind: "error"; code: "MALFORMED_FRAME" | "FRAME_TOO_LARGE" } | { kind: "pong" } | { kind: "nothing" } | { kind: "close"; reason: "AUTH_REQUIRED" | "TOKEN_INVALID" };

export type FrameCase = { room: string; phase: Phase; frameType: string; cls: FrameClass; data: string | Uint8Array };

export const frameVariants = (jsonSchemaOf(clientFrameSchema).oneOf ?? []).map((variant) => ({ type: String(variant.properties?.type?.const), schema: variant }));

export function frameArb(frameType: string, cls: FrameClass, resolve: Resolve): fc.Arbitrary<string | Uint8Array> {
  const schema = frameVariants.find((variant) => variant.type === frameType)!.schema;
  return validValue(schema, resolve).chain((valid): fc.Arbitrary<string | Uint8Array> => {
    const text = jsonText(valid);
    switch (cls) {
      case "binary":
        return fc.constant(new TextEncoder().encode(text));
      case "oversize":
        return fc.integer({ min: 1, max: 64 * 1024 }).map((extra) => jsonText({ ...(valid as object), pad: `${CANARY}${"x".repeat(MAX_FRAME_BYTES + extra)}` }));
      case "unknown-type":
        return fc
          .constantFrom(frameType.toUpperCase(), `${frameType} `, `${frameType}.x`, "", "__proto__", "pong", "authenticated", "error", "status", `${frameType}\u0000`)
          .map((type) => jsonText({ ...(valid as object), type }));
      case "invalid-json":
        return invalidJson(text);
      case "empty":
        return fc.constantFrom("", " ", "\n");
      default:
        return breakValue(valid, schema, resolve, cls).map(({ value }) => jsonText(value));
    }
  });
}

/** The protocol's answer to a frame (SPEC §6, src/realtime): parsed by the schema it declares. */
export function expectedFor(data: string | Uint8Array, phase: Phase): Expected {
  const size = typeof data === "string" ? new TextEncoder().encode(data).byteLength : data.byteLength;
  if (size > MAX_FRAME_BYTES) return { kind: "error", code: "FRAME_TOO_LARGE" };
  if (typeof data !== "string") return { kind: "error", code: "MALFORMED_FRAME" };
  let parsed: ReturnType<typeof clientFrameSchema.safeParse>;
  try {
    parsed = clientFrameSchema.safeParse(JSON.parse(data));
  } catch {
    return { kind: "error", code: "MALFORMED_FRAME" };
  }
  if (!parsed.success) return { kind: "error", code: "MALFORMED_FRAME" };
  // A well-formed frame: pong; or a junk token, which closes any socket; or, before authenticate, a close.
  if (parsed.data.type === "ping") return { kind: "pong" };
  if (parsed.data.type === "authenticate") return { kind: "close", reason: "TOKEN_INVALID" };
  return phase === "before authenticate" ? { kind: "close", reason: "AUTH_REQUIRED" } : { kind: "nothing" };
}

type FrameResult = { outcome: "as promised" | "wrongly closed" | "wrong answer" | "hang" | "auth deadline"; detail: string };

/** Sends one bad frame, then (where the socket should stay open) a ping, and checks what came back. */
export async function sendFrame(socket: TestSocket, data: string | Uint8Array, expected: Expected, openedAt: number): Promise<FrameResult> {
  const from = socket.frames.length;
  const closed = socket.closed(DEADLINE_MS).then(
    (close) => close,
    () => undefined,
  );
  try {
    socket.ws.send(data);
    if (expected.kind !== "close") socket.send({ type: "ping" });
  } catch {
    return { outcome: "wrongly closed", detail: "the socket was closed before the frame" };
  }
  const pongs = expected.kind === "pong" ? 2 : 1;
  const answered =
    expected.kind === "close"
      ? closed
      : (async () => {
          let at = from;
          for (let i = 0; i < pongs; i++) {
            await socket.frame("pong", at, DEADLINE_MS);
            at = socket.frames.findIndex((frame, index) => index >= at && frame.type === "pong") + 1;
          }
          return "answered" as const;
        })().catch(() => undefined);
  const result = await Promise.race([answered, closed]);
  const got = socket.frames.slice(from);
  const errors = got.filter((frame) => frame.type === "error").map((frame) => String(frame.code));
  if (result === undefined) return { outcome: "hang", detail: `no answer in 5 s; got ${JSON.stringify(got.map((f) => f.type))}` };
  if (result === "answered") {
    if (expected.kind === "close") return { outcome: "wrong answer", detail: "stayed open" };
    const wanted = expected.kind === "error" ? [expected.code] : [];
    return errors.join() === wanted.join() ? { outcome: "as promised", detail: "" } : { outcome: "wrong answer", detail: `errors ${JSON.stringify(errors)}, expected ${JSON.stringify(wanted)}` };
  }
  // Closed. A socket that has not authenticated goes at its deadline (WS_AUTH_TIMEOUT_MS) whatever it sends.
  if (result.reason === "AUTH_TIMEOUT" && result.at - openedAt >= 900) return { outcome: "auth deadline", detail: "" };
  if (expected.kind === "close") {
    return result.code === 4401 && result.reason === expected.reason ? { outcome: "as promised", detail: "" } : { outcome: "wrong answer", detail: `closed ${result.code} ${result.reason}, expected 4401 ${expected.reason}` };
  }
  return { outcome: "wrongly closed", detail: `closed ${result.code} ${result.reason}` };
}

type Room = { name: string; path: (owner: Owner & { generationId: string }) => string };
export const ROOMS: Room[] = [
  { name: "session", path: (owner) => `/api/v1/sessions/${owner.sessionId}/ws` },
  { name: "openers", path: (owner) => `/api/v1/magic-openers/generations/${owner.generationId}/ws` },
];

/** A fuzz user with a session and an opener generation: a room of each kind it owns. */
export async function provisionRooms(): Promise<Owner & { generationId: string }> {
  const owner = await provision();
  const generated = await json<{ generationId: string }>(
    await callAs(owner.token, "/api/v1/magic-openers/generate", { method: "POST", json: { profile: { name: CANARY, bio: `${CANARY} climber, bad at karaoke` }, count: 1 } }),
  );
  if (!generated.success) throw new Error(`no opener generation for the fuzz user: ${JSON.stringify(generated.error)}`);
  return { ...owner, generationId: generated.data.generationId };
}

/** A socket on the room in `phase`: fresh, or live through a bearer upgrade or a first `authenticate` frame. */
export async function openIn(room: Room, phase: Phase, owner: Owner & { generationId: string }, viaHeader: boolean): Promise<{ socket: TestSocket; openedAt: number }> {
  const openedAt = performance.now();
  if (phase === "before authenticate") return { socket: await openSocket(room.path(owner)), openedAt };
  if (!viaHeader) return { socket: await authenticatedSocket(room.path(owner), owner.token), openedAt };
  const socket = await openSocket(room.path(owner), { Authorization: `Bearer ${owner.token}` });
  await socket.frame("authenticated");
  return { socket, openedAt };
}
