import { and, asc, eq, inArray, lt, or, sql } from "drizzle-orm";
import { z } from "zod";
import { aiEngineFor } from "../../ai/engine";
import { createFieldStream } from "../../ai/json-stream";
import { buildPhaseRequest } from "../../ai/prompts/phase.v1";
import { buildSuggestionsRequest } from "../../ai/prompts/suggestions.v1";
import { AiError } from "../../ai/strategy";
import { messages, sessions, suggestionGenerations, suggestions, users } from "../../db/schema";
import { AppError } from "../../lib/errors";
import type { JobContext, JobDefinition } from "../../lib/jobs";
import type { RoomEvent } from "../../realtime/protocol";
import { roomStub } from "../../realtime/rooms";
import { broadcastStatus, transitionStatement } from "../sessions/lifecycle";
import { suggestionsOutputSchema } from "./schemas";

/** A run that stopped updating its generation for this long is presumed dead; another may take over. */
const STALE_RUN_MS = 2 * 60 * 1000;
/** How often a run asks the room whether a socket sent `cancel` (SPEC: stop within 1 s). */
const CANCEL_POLL_MS = 100;
/** The most recent messages the phase detector and the retrieval query look at. */
const RECENT_MESSAGES = 12;

const phaseOutputSchema = z.object({ phase: z.number().int().min(1).max(4), confidence: z.number().min(0).max(1) });

type Generation = typeof suggestionGenerations.$inferSelect;

/** Publishes one event after another, in order, without making the token stream wait for each. */
function createPublisher(ctx: JobContext, sessionId: string, generationId: string) {
  let chain: Promise<void> = Promise.resolve();
  let n = 0;
  // A run's events are keyed by the delivery, so a retry (which starts over) is never mistaken
  // for a duplicate, while a duplicate of the same delivery publishes nothing twice.
  const run = `${ctx.messageId}:${ctx.retried}`;
  return {
    publish(event: RoomEvent, key = `gen:${generationId}:${run}:${n++}`) {
      chain = chain.then(() => ctx.broadcast(sessionId, event, { key }));
      return chain;
    },
    settled: () => chain,
  };
}

/** Takes the generation for this run: a queued one, or one whose previous run went silent. */
async function claimGeneration(ctx: JobContext, generationId: string): Promise<Generation | undefined> {
  const [claimed] = await ctx.db
    .update(suggestionGenerations)
    .set({ status: "streaming", errorCode: null })
    .where(
      and(
        eq(suggestionGenerations.id, generationId),
        or(
          eq(suggestionGenerations.status, "queued"),
          and(eq(suggestionGenerations.status, "streaming"), lt(suggestionGenerations.updatedAt, new Date(Date.now() - STALE_RUN_MS))),
        ),
      ),
    )
    .returning();
  return claimed;
}

/** Ends a generation that will not complete, and frees (or fails) its session. Idempotent. */
async function endGeneration(
  ctx: JobContext,
  generation: Pick<Generation, "id" | "sessionId">,
  outcome: { status: "cancelled" } | { status: "failed"; code: string; message: string },
) {
  const [ended, [session]] = await ctx.db.batch([
    ctx.db
      .update(suggestionGenerations)
      .set({ status: outcome.status, errorCode: outcome.status === "failed" ? outcome.code : null })
      .where(and(eq(suggestionGenerations.id, generation.id), inArray(suggestionGenerations.status, ["queued", "streaming"])))
      .returning({ id: suggestionGenerations.id }),
    outcome.status === "cancelled"
      ? transitionStatement(ctx.db, { sessionId: generation.sessionId, to: "ready", from: ["generating"] })
      : transitionStatement(ctx.db, { sessionId: generation.sessionId, to: "failed", from: ["generating"], error: { code: outcome.code, message: outcome.message } }),
  ]);
  if (ended.length === 0) return;
  const key = `gen:${generation.id}:end`;
  if (outcome.status === "cancelled") await ctx.broadcast(generation.sessionId, { type: "generation.cancelled", data: { generationId: generation.id } }, { key });
  else await ctx.broadcast(generation.sessionId, { type: "generation.failed", data: { generationId: generation.id, code: outcome.code, message: outcome.message } }, { key });
  if (session) await broadcastStatus(ctx.broadcast, session, { key: `${key}:status` });
}

/**
 * The suggestion job (SPEC §7–8): phase detection, retrieval for that phase, then the reply
 * suggestions streamed token by token through the session's room, persisted, and announced.
 * A `cancel` frame aborts the upstream call; a fallback after tokens went out is announced as
 * `generation.restarted`; a final AI failure ends the generation `failed`.
 */
async function runSuggestionJob(ctx: JobContext, { generationId }: { generationId: string }) {
  const generation = await claimGeneration(ctx, generationId);
  if (!generation) return { skipped: true };
  const { sessionId } = generation;
  const events = createPublisher(ctx, sessionId, generationId);
  if (ctx.retried > 0) await events.publish({ type: "generation.restarted", data: { generationId, reason: "retry" } });

  const [session] = await ctx.db
    .select({ userId: sessions.userId, status: sessions.status, language: sql<string | null>`${users.preferences} ->> 'language'` })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, sessionId));
  if (!session || session.status !== "generating") {
    await endGeneration(ctx, generation, { status: "failed", code: "SESSION_CHANGED", message: "The session changed before the generation started" });
    return { skipped: true };
  }
  const conversation = await ctx.db
    .select({ sender: messages.sender, text: messages.text })
    .from(messages)
    .where(eq(messages.sessionId, sessionId))
    .orderBy(asc(messages.position));

  const engine = aiEngineFor(ctx.config, ctx.db);
  const abort = new AbortController();
  const room = roomStub(ctx.env, "session", sessionId);
  const poll = setInterval(() => {
    room.isCancelRequested(generationId).then(
      (cancelled) => cancelled && abort.abort(new Error("cancelled by the user")),
      () => {},
    );
  }, CANCEL_POLL_MS);
  // Long runs keep their claim fresh, so a duplicate delivery never takes over a live run.
  const heartbeat = setInterval(() => {
    ctx.db
      .update(suggestionGenerations)
      .set({ updatedAt: new Date() })
      .where(and(eq(suggestionGenerations.id, generationId), eq(suggestionGenerations.status, "streaming")))
      .catch(() => {});
  }, STALE_RUN_MS / 4);
  const options = { userId: session.userId, signal: abort.signal };

  try {
    // Phase: structured, stored, broadcast. Without it the suggestions still come, just less tailored.
    let phase: number | null = null;
    try {
      const { data } = await engine.completeStructured(buildPhaseRequest(conversation.slice(-RECENT_MESSAGES)), phaseOutputSchema, { ...options, kind: "phase" });
      phase = data.phase;
      await ctx.db.update(sessions).set({ phase: data.phase, phaseConfidence: data.confidence }).where(eq(sessions.id, sessionId));
      await events.publish({ type: "phase", data: { generationId, phase: data.phase, confidence: data.confidence } });
    } catch (error) {
      if (error instanceof AiError && error.code === "AI_CANCELLED") throw error;
      ctx.logger.warn("phase detection failed; generating without a phase", { code: (error as AiError).code });
    }

    const query = conversation.slice(-RECENT_MESSAGES).map((message) => message.text).join("\n");
    const knowledge = await engine.retrieve(query, { phase: phase ?? undefined, k: 5, userId: session.userId }).catch((error: unknown) => {
      ctx.logger.warn("knowledge retrieval failed; generating without coaching notes", { error });
      return [];
    });

    const request = buildSuggestionsRequest({
      messages: conversation,
      phase,
      tone: generation.tone ?? "playful",
      count: generation.count,
      instructions: generation.instructions ?? undefined,
      language: session.language ?? undefined,
      knowledge: knowledge.map(({ title, content }) => ({ title, content })),
    });
    await events.publish({ type: "suggestion.started", data: { generationId, count: generation.count, tone: generation.tone } });

    let fields = createFieldStream("suggestions", "text");
    let answer: { text: string; provider: string; model: string } | undefined;
    for await (const event of engine.generate(request, { ...options, kind: "suggestions" })) {
      if (event.type === "delta") {
        for (const { index, delta } of fields.feed(event.text)) {
          if (index < generation.count) void events.publish({ type: "suggestion.delta", data: { generationId, index, delta } });
        }
      } else if (event.type === "restart") {
        fields = createFieldStream("suggestions", "text");
        void events.publish({ type: "generation.restarted", data: { generationId, reason: event.reason } });
      } else {
        answer = { text: event.text, provider: event.provider, model: event.model };
      }
    }
    await events.settled();
    if (!answer) throw new AiError("AI_UNAVAILABLE", "the generation ended without an answer");

    let output: z.infer<typeof suggestionsOutputSchema>;
    try {
      output = suggestionsOutputSchema.parse(JSON.parse(answer.text));
    } catch (error) {
      throw new AiError("AI_INVALID_OUTPUT", "the suggestions did not fit the schema", { cause: error });
    }
    const rows = output.suggestions.slice(0, generation.count).map((suggestion, rank) => ({
      generationId,
      sessionId,
      rank,
      tone: suggestion.tone,
      text: suggestion.text,
    }));
    const [, [completed], [ready]] = await ctx.db.batch([
      ctx.db.insert(suggestions).values(rows).onConflictDoNothing(),
      ctx.db
        .update(suggestionGenerations)
        .set({ status: "completed", provider: answer.provider, model: answer.model })
        .where(and(eq(suggestionGenerations.id, generationId), eq(suggestionGenerations.status, "streaming")))
        .returning({ id: suggestionGenerations.id }),
      transitionStatement(ctx.db, { sessionId, to: "ready", from: ["generating"] }),
    ]);
    if (!completed) return { skipped: true };
    const saved = await ctx.db.select().from(suggestions).where(eq(suggestions.generationId, generationId)).orderBy(asc(suggestions.rank));
    await events.publish(
      {
        type: "suggestion.completed",
        data: { generationId, suggestions: saved.map(({ id, rank, tone, text }) => ({ id, rank, tone, text })) },
      },
      `gen:${generationId}:completed`,
    );
    if (ready) await broadcastStatus(ctx.broadcast, ready, { key: `gen:${generationId}:ready` });
    return { suggestions: saved.length };
  } catch (error) {
    await events.settled().catch(() => {});
    if (error instanceof AiError && error.code === "AI_CANCELLED") {
      await endGeneration(ctx, generation, { status: "cancelled" });
      return { cancelled: true };
    }
    if (error instanceof AiError || (error instanceof AppError && error.code === "AI_BUDGET_EXCEEDED")) {
      const { code } = error;
      await endGeneration(ctx, generation, { status: "failed", code, message: "No suggestions could be written; try again" });
      return { failed: code };
    }
    // Anything else (a database or room outage) is worth QStash's retry: release the claim.
    await ctx.db
      .update(suggestionGenerations)
      .set({ status: "queued" })
      .where(and(eq(suggestionGenerations.id, generationId), eq(suggestionGenerations.status, "streaming")))
      .catch(() => {});
    throw error;
  } finally {
    clearInterval(poll);
    clearInterval(heartbeat);
  }
}

/** QStash gave up on the job: the generation and its session fail, and the room is told. */
async function failSuggestionJob(ctx: JobContext, { generationId }: { generationId: string }) {
  const [generation] = await ctx.db.select().from(suggestionGenerations).where(eq(suggestionGenerations.id, generationId));
  if (generation) await endGeneration(ctx, generation, { status: "failed", code: "JOB_FAILED", message: "No suggestions could be written; try again" });
}

export const suggestionJob: JobDefinition<{ generationId: string }> = {
  payload: z.object({ generationId: z.string().min(1).max(64) }),
  run: runSuggestionJob,
  fail: failSuggestionJob,
};
