import { z } from "zod";
import { chatPlatformEnum, messageSenderEnum, sessionStatusEnum } from "../db/schema";
import { codesOn } from "../lib/errors";

/** Codes of a failed session or generation (the catalog's outcomes, src/lib/errors.ts). */
const outcomeCode = z.enum(codesOn("outcome"));

/**
 * What the server sends on a room's WebSocket (SPEC §6), each shape declared once. Publishers are
 * typed by these (`RoomEvent` in protocol.ts), tests check every frame they receive against them,
 * and `npm run client` turns them into the mobile app's `ServerFrame` union.
 */

const generationId = z.string().describe("The suggestion or opener generation the event belongs to");
const streamedText = {
  generationId,
  index: z.number().int().min(0).describe("Which of the generation's texts this piece belongs to (0-based)"),
  delta: z.string().describe("The next characters of that text; append them in arrival order"),
};
const writtenText = z.strictObject({
  id: z.string(),
  rank: z.number().int().min(0),
  tone: z.string().nullable(),
  text: z.string(),
});

const investmentSide = z.strictObject({
  messages: z.number().int().min(0),
  averageLength: z.number().int().min(0).describe("Characters per message"),
  questions: z.number().int().min(0).describe("Messages that ask something"),
});

/**
 * The chat analysis of a session (SPEC §12): made in the phase step's call, stored on the session
 * (`GET /sessions/{id}` → `analysis`) and sent as the `analysis` event before the suggestions.
 */
export const chatAnalysisSchema = z.strictObject({
  interest: z.number().int().min(0).max(100).describe("How interested the match seems, 0–100"),
  interestReason: z.string().describe("One line, in the conversation's language (or the user's)"),
  matchTone: z.string().describe("warm, playful, flirty, dry, curious, distant, enthusiastic or guarded"),
  energy: z.enum(["low", "medium", "high"]),
  signals: z.strictObject({ green: z.array(z.string()).max(3), red: z.array(z.string()).max(3) }),
  nextMove: z.string().describe("One sentence: what to do next"),
  language: z.string().describe("The BCP-47 tag of the conversation's language"),
  investment: z
    .strictObject({
      user: investmentSide,
      match: investmentSide,
      balance: z.number().min(-1).max(1).describe("-1: the match puts in all the effort; 1: the user does; computed from the messages"),
    })
    .describe("Who is putting in more effort, computed in code from the messages"),
});

/** Each room event's fields, by type. The room adds `type`, `seq` and `ts` to them. */
export const roomEventData = {
  status: z.strictObject({
    status: z.enum(sessionStatusEnum.enumValues),
    progress: z.number().optional().describe("While OCR runs: the share of screenshots read so far, 0–1"),
    error: z
      .strictObject({ code: outcomeCode, message: z.string().nullable() })
      .optional()
      .describe("Why the session failed; only with status `failed`"),
  }),
  "ocr.completed": z.strictObject({
    messages: z.array(
      z.strictObject({
        id: z.string(),
        sender: z.enum(messageSenderEnum.enumValues),
        text: z.string(),
        position: z.number().int().min(0),
        ocrConfidence: z.number().nullable(),
      }),
    ),
    matchName: z.string().nullable(),
    platform: z.enum(chatPlatformEnum.enumValues).nullable(),
  }),
  phase: z.strictObject({
    generationId,
    phase: z.number().int().min(1).max(4).describe("1 opening, 2 building rapport, 3 flirting, 4 moving to a date"),
    confidence: z.number().min(0).max(1),
  }),
  analysis: chatAnalysisSchema.extend({ generationId }),
  "suggestion.started": z.strictObject({ generationId, count: z.number().int().min(1).max(5), tone: z.string() }),
  "suggestion.delta": z.strictObject(streamedText),
  "suggestion.completed": z.strictObject({ generationId, suggestions: z.array(writtenText) }),
  "generation.restarted": z.strictObject({
    generationId,
    reason: z
      .union([z.literal("retry"), z.enum(codesOn("ai_call"))])
      .describe("`retry` (a redelivery took the run over), or the code of the failed attempt that made the answer start over"),
  }),
  "generation.failed": z.strictObject({ generationId, code: outcomeCode, message: z.string() }),
  "generation.cancelled": z.strictObject({ generationId }),
  // Magic openers stream like suggestions, in their generation's own room (modules/openers/job.ts).
  "opener.delta": z.strictObject(streamedText),
  "opener.completed": z.strictObject({ generationId, openers: z.array(writtenText) }),
} satisfies Record<string, z.ZodObject>;

export type RoomEventType = keyof typeof roomEventData;
export type RoomEventData<T extends RoomEventType> = z.infer<(typeof roomEventData)[T]>;

/** Codes of `error` frames (the catalog's, src/lib/errors.ts). */
const socketErrorCodeSchema = z.enum(codesOn("frame"));

const seq = z.number().int().min(0);
const ts = z.number().int().describe("Server time, milliseconds since the epoch");

/** A room event as sockets receive it: its data, spread, plus `type`, `seq` and `ts`. */
function roomFrame<T extends RoomEventType, Shape extends z.core.$ZodShape>(
  type: T,
  data: z.ZodObject<Shape, z.core.$strict> & (typeof roomEventData)[T],
  description: string,
) {
  return z
    .strictObject({ type: z.literal(type), seq: seq.describe("Strictly increasing per room; resume after the last one seen"), ts, ...data.shape })
    .describe(description);
}

/** Direct replies to one socket: they take no seq of their own. */
const directFrames = {
  authenticated: z.strictObject({ type: z.literal("authenticated"), seq: seq.describe("The room's latest seq when the socket went live"), ts }),
  pong: z.strictObject({ type: z.literal("pong"), ts }),
  error: z.strictObject({
    type: z.literal("error"),
    seq: seq.describe("The room's latest seq (0 before authentication)"),
    ts,
    code: socketErrorCodeSchema,
    message: z.string(),
  }),
};

/** Every frame the server sends, by type (PascalCase names: `npm run client` exports them as types). */
export const serverFrames = {
  AuthenticatedFrame: directFrames.authenticated,
  PongFrame: directFrames.pong,
  ErrorFrame: directFrames.error,
  StatusFrame: roomFrame("status", roomEventData.status, "The session moved to another step of its lifecycle, or OCR made progress"),
  OcrCompletedFrame: roomFrame("ocr.completed", roomEventData["ocr.completed"], "The screenshots were read: review the messages, then confirm them"),
  PhaseFrame: roomFrame("phase", roomEventData.phase, "The conversation's phase, detected before the suggestions are written"),
  AnalysisFrame: roomFrame("analysis", roomEventData.analysis, "The chat analysis (interest, the match's tone, signals, next move, language, investment), before the suggestions; also in GET /sessions/{id}"),
  SuggestionStartedFrame: roomFrame("suggestion.started", roomEventData["suggestion.started"], "Suggestions are being written; deltas follow"),
  SuggestionDeltaFrame: roomFrame("suggestion.delta", roomEventData["suggestion.delta"], "The next characters of one suggestion"),
  SuggestionCompletedFrame: roomFrame("suggestion.completed", roomEventData["suggestion.completed"], "The stored suggestions: replace what was streamed with these"),
  GenerationRestartedFrame: roomFrame("generation.restarted", roomEventData["generation.restarted"], "Discard what was streamed for this generation: a new answer follows"),
  GenerationFailedFrame: roomFrame("generation.failed", roomEventData["generation.failed"], "The generation ended without an answer"),
  GenerationCancelledFrame: roomFrame("generation.cancelled", roomEventData["generation.cancelled"], "The generation stopped after a `cancel` frame"),
  OpenerDeltaFrame: roomFrame("opener.delta", roomEventData["opener.delta"], "The next characters of one magic opener"),
  OpenerCompletedFrame: roomFrame("opener.completed", roomEventData["opener.completed"], "The stored magic openers: replace what was streamed with these"),
};

type ServerFrameSchema = (typeof serverFrames)[keyof typeof serverFrames];
export const serverFrameSchema = z.discriminatedUnion("type", Object.values(serverFrames) as [ServerFrameSchema, ...ServerFrameSchema[]]);
export type ServerFrame = z.infer<typeof serverFrameSchema>;

/** A reply to one socket rather than a room event. */
export type DirectFrame = Exclude<ServerFrame, { type: RoomEventType }>;
