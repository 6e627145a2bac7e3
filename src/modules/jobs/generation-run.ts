import type { AiEngine } from "../../ai/engine";
import { createFieldStream } from "../../ai/json-stream";
import { AiError, type EngineEvent } from "../../ai/strategy";
import type { AiCallKind, GenerateRequest } from "../../ai/types";
import { AppError, errorMessage, type OutcomeErrorCode } from "../../lib/errors";
import type { RoomAddress, RoomEvent } from "../../realtime/protocol";
import type { Broadcast, RoomHearing } from "../../realtime/rooms";
import type { JobContext } from "./definition";

/**
 * What the jobs that stream a generation to a room (suggestions, magic openers) share: the keyed
 * event publisher, the streaming of a structured answer's texts, how a run that threw ends its
 * generation, and how the room is told that it ended. Each job keeps its own table's writes.
 */

type DeltaEvent = Extract<RoomEvent, { type: "suggestion.delta" | "opener.delta" }>;
const isDelta = (event: RoomEvent): event is DeltaEvent => event.type === "suggestion.delta" || event.type === "opener.delta";

/**
 * Publishes one event after another, in order, without making the token stream wait for each.
 * A delta queued behind the one in flight takes in the deltas of the same text that follow it:
 * idle, every token goes out as it comes; under load (hundreds of generations on one machine),
 * a room gets one event per round trip instead of a backlog of one per token.
 */
export function createRunPublisher(ctx: JobContext, room: RoomAddress, generationId: string) {
  let chain: Promise<void> = Promise.resolve();
  let n = 0;
  /** The last event queued and not yet handed to the room: still open to more of its text. */
  let waiting: { event: RoomEvent; key: string } | undefined;
  // A run's events are keyed by the delivery, so a retry (which starts over) is never mistaken
  // for a duplicate, while a duplicate of the same delivery publishes nothing twice.
  const run = `${ctx.messageId}:${ctx.retried}`;
  let heard: RoomHearing | undefined;
  return {
    publish(event: RoomEvent, key?: string) {
      const last = waiting?.event;
      if (last && isDelta(last) && isDelta(event) && last.type === event.type && last.data.index === event.data.index && key === undefined) {
        last.data = { ...last.data, delta: last.data.delta + event.data.delta };
        return chain;
      }
      const queued = { event, key: key ?? `gen:${generationId}:${run}:${n++}` };
      waiting = queued;
      chain = chain.then(() => {
        if (waiting === queued) waiting = undefined;
        return ctx.broadcast(room, queued.event, { key: queued.key, cancelOf: generationId }).then((answer) => {
          if (answer) heard = { at: Date.now(), cancelRequested: answer.cancelRequested === true };
        });
      });
      return chain;
    },
    settled: () => chain,
    /** The room's latest answer: whether a cancel of this generation was asked for, and when it said so. */
    lastHeard: () => heard,
  };
}

export type RunPublisher = ReturnType<typeof createRunPublisher>;

/** How a generation that will not complete ends. */
export type GenerationOutcome = { status: "cancelled" } | { status: "failed"; code: OutcomeErrorCode };

/**
 * The end a run's error calls for: the user's cancel, or a failure retrying cannot help (the
 * model's own failures, a spent budget). `undefined` for anything else (a database or room
 * outage), which is worth QStash's retry.
 */
export function outcomeOf(error: unknown): GenerationOutcome | undefined {
  const code = error instanceof AiError ? error.code : error instanceof AppError && error.code === "AI_BUDGET_EXCEEDED" ? error.code : undefined;
  if (code === "AI_CANCELLED") return { status: "cancelled" };
  return code ? { status: "failed", code } : undefined;
}

/** Tells the room a generation ended without completing; keyed, so it is told once whoever ends it. */
export function announceEnd(broadcast: Broadcast, room: RoomAddress, generationId: string, outcome: GenerationOutcome) {
  const key = `gen:${generationId}:end`;
  if (outcome.status === "cancelled") return broadcast(room, { type: "generation.cancelled", data: { generationId } }, { key });
  return broadcast(room, { type: "generation.failed", data: { generationId, code: outcome.code, message: errorMessage(outcome.code) } }, { key });
}

type StreamedAnswer<T> = Extract<EngineEvent<T>, { type: "done" }>;

/**
 * Streams a structured answer whose texts sit at `<array>[i].<field>`: each text's characters go
 * to the room as `delta` events while the model's JSON arrives; a `restart` of the engine (a
 * retry or fallback after tokens went out) is passed on as `generation.restarted`. `parse`
 * refuses an answer that does not fit (the wrong number of texts …), which the engine retries
 * like any other fault. Answers the engine's final event once the room has every event.
 */
export async function streamTexts<T>(
  run: { engine: AiEngine; events: RunPublisher; generationId: string },
  call: {
    request: GenerateRequest;
    kind: AiCallKind;
    userId: string;
    signal: AbortSignal;
    parse: (text: string) => T;
    texts: { array: string; field: string; count: number; delta: "suggestion.delta" | "opener.delta" };
  },
): Promise<StreamedAnswer<T>> {
  const { engine, events, generationId } = run;
  const { texts } = call;
  let fields = createFieldStream(texts.array, texts.field);
  let answer: StreamedAnswer<T> | undefined;
  for await (const event of engine.generate(call.request, { kind: call.kind, userId: call.userId, signal: call.signal, parse: call.parse })) {
    if (event.type === "delta") {
      for (const { index, delta } of fields.feed(event.text)) {
        if (index < texts.count) void events.publish({ type: texts.delta, data: { generationId, index, delta } });
      }
    } else if (event.type === "restart") {
      fields = createFieldStream(texts.array, texts.field);
      void events.publish({ type: "generation.restarted", data: { generationId, reason: event.reason } });
    } else {
      answer = event;
    }
  }
  await events.settled();
  if (!answer) throw new AiError("AI_UNAVAILABLE", "the generation ended without an answer");
  return answer;
}

/**
 * A run that threw: ends the generation when retrying cannot help (`outcomeOf`), else gives the
 * lease up and rethrows for QStash's retry. A run whose lease another delivery took leaves the
 * generation to that run.
 */
export async function endAfterFailure(
  run: { ctx: JobContext; events: RunPublisher },
  heartbeat: { lost(): boolean; stop(): Promise<void> },
  error: unknown,
  generation: { end(outcome: GenerationOutcome): Promise<unknown>; releaseLease(): Promise<unknown> },
) {
  const { ctx, events } = run;
  await events.settled().catch((settleError: unknown) => ctx.logger.warn("room publish failed", { error: settleError }));
  if (heartbeat.lost()) return { skipped: "lease lost" };
  const outcome = outcomeOf(error);
  if (outcome) {
    await generation.end(outcome);
    return outcome.status === "cancelled" ? { cancelled: true } : { failed: outcome.code };
  }
  // Give the lease up so the next delivery need not wait it out (the heartbeat stopped first,
  // so no late renewal takes it back).
  await heartbeat.stop();
  await generation.releaseLease().catch((releaseError: unknown) => ctx.logger.warn("lease release failed", { error: releaseError }));
  throw error;
}
