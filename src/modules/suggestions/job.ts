import { and, asc, eq, inArray, or, type SQL, sql } from "drizzle-orm";
import { z } from "zod";
import { type AiEngine, aiEngineFor } from "../../ai/engine";
import { buildPhaseRequest, phaseOutputSchema } from "../../ai/prompts/phase.v2";
import { buildSuggestionsRequest, suggestionsOutputSchema } from "../../ai/prompts/suggestions.v1";
import { AiError, parseJsonOutput } from "../../ai/strategy";
import { type SessionAnalysis, suggestionGenerations, suggestions } from "../../db/schema";
import { AppError } from "../../lib/errors";
import { newId } from "../../lib/ids";
import { holdLease, leaseHeldBy, leaseLapsed, newLeaseOwner, releaseLease, staleRun, takeLease } from "../../lib/lease";
import { watchForCancel } from "../../realtime/rooms";
import { type JobContext, type JobDefinition, jobInstant, jobInstantSchema } from "../jobs/definition";
import { announceEnd, createRunPublisher, endAfterFailure, type GenerationOutcome, type RunPublisher, streamTexts } from "../jobs/generation-run";
import { broadcastStatus, transitionStatement } from "../sessions/lifecycle";
import { conversationToGenerate } from "../sessions/messages";
import { sessionRoom } from "../sessions/room";
import { recordPhase } from "../sessions/service";
import { getUser } from "../users/service";
import { canAnalyse, investmentOf } from "./analysis";
import { DEFAULT_TONE } from "./schemas";

/** The most recent messages the phase detector and the retrieval query look at. */
const RECENT_MESSAGES = 12;
/** Stale runs the sweep ends per delivery, so one sweep never does unbounded work. */
const SWEEP_BATCH = 100;

type Generation = typeof suggestionGenerations.$inferSelect;
type Conversation = Array<{ sender: "user" | "match"; text: string }>;
const lease = { owner: suggestionGenerations.leaseOwner, expiresAt: suggestionGenerations.leaseExpiresAt };

/**
 * Takes the generation for this run: a queued one, or one whose last run's lease lapsed (that
 * run died). While another run's lease is live the delivery is refused (503), so QStash
 * delivers it again later instead of counting it done; finished work answers `undefined`.
 */
async function claimGeneration(ctx: JobContext, generationId: string, owner: string): Promise<Generation | undefined> {
  const [claimed] = await ctx.db
    .update(suggestionGenerations)
    .set({ status: "streaming", errorCode: null, ...takeLease(owner, ctx.config.JOB_LEASE_SECONDS) })
    .where(
      and(
        eq(suggestionGenerations.id, generationId),
        or(eq(suggestionGenerations.status, "queued"), and(eq(suggestionGenerations.status, "streaming"), leaseLapsed(lease))),
      ),
    )
    .returning();
  if (claimed) return claimed;
  const [current] = await ctx.db.select({ status: suggestionGenerations.status }).from(suggestionGenerations).where(eq(suggestionGenerations.id, generationId));
  if (current?.status === "streaming") throw new AppError("JOB_RUN_IN_PROGRESS");
  return undefined;
}

/**
 * Ends a generation that will not complete, and frees (or fails) its session — only when
 * `guard` holds for the generation (the run's own lease, or a lapsed one). Idempotent.
 */
async function endGeneration(
  ctx: JobContext,
  generation: Pick<Generation, "id" | "sessionId">,
  outcome: GenerationOutcome,
  guard: SQL,
) {
  const endedHere = sql`exists (select 1 from ${suggestionGenerations} where ${and(eq(suggestionGenerations.id, generation.id), eq(suggestionGenerations.status, outcome.status))})`;
  const [ended, [session]] = await ctx.db.batch([
    ctx.db
      .update(suggestionGenerations)
      .set({ status: outcome.status, errorCode: outcome.status === "failed" ? outcome.code : null, ...releaseLease() })
      .where(and(eq(suggestionGenerations.id, generation.id), inArray(suggestionGenerations.status, ["queued", "streaming"]), guard))
      .returning({ id: suggestionGenerations.id }),
    outcome.status === "cancelled"
      ? transitionStatement(ctx.db, { sessionId: generation.sessionId, to: "ready", from: ["generating"], when: endedHere })
      : transitionStatement(ctx.db, {
          sessionId: generation.sessionId,
          to: "failed",
          from: ["generating"],
          error: { code: outcome.code },
          when: endedHere,
        }),
  ]);
  if (ended.length === 0) return;
  await announceEnd(ctx.broadcast, sessionRoom(generation.sessionId), generation.id, outcome);
  if (session) await broadcastStatus(ctx.broadcast, session, { key: `gen:${generation.id}:end:status` });
}

/** One delivery's hold on a generation: what it writes under, and how it tells the room. */
type Run = {
  ctx: JobContext;
  generation: Generation;
  /** This delivery's lease owner. */
  owner: string;
  /** Every write of the run holds only while the run still owns the generation's lease. */
  held: SQL;
  events: RunPublisher;
};

/** A run with its conversation loaded: what the model calls need. */
type ModelRun = Run & { userId: string; conversation: Conversation; language: string | null; engine: AiEngine; signal: AbortSignal };

type Answer = { output: Array<{ text: string }>; tone: string; language: string | null; provider: string; model: string };

/** The session's owner, language and messages, if it is still generating. */
async function loadConversation(ctx: JobContext, sessionId: string) {
  const session = await conversationToGenerate(ctx.db, sessionId);
  if (!session) return undefined;
  const { preferences } = await getUser(ctx.db, session.userId);
  return { ...session, language: preferences.language ?? null };
}

/** Renews the run's lease while it lives; `abort` fires if another delivery took the generation. */
function holdGeneration({ ctx, generation, owner, held }: Run) {
  return holdLease({
    seconds: ctx.config.JOB_LEASE_SECONDS,
    renew: async () =>
      (
        await ctx.db
          .update(suggestionGenerations)
          .set(takeLease(owner, ctx.config.JOB_LEASE_SECONDS))
          .where(and(eq(suggestionGenerations.id, generation.id), eq(suggestionGenerations.status, "streaming"), held))
          .returning({ id: suggestionGenerations.id })
      ).length > 0,
    logger: ctx.logger,
  });
}

type Reading = { phase: number | null; analysis: SessionAnalysis | null };

/**
 * Phase and chat analysis, in one structured call: stored on the session, then broadcast (`phase`,
 * and `analysis` once per generation, before `suggestion.started`). A conversation of one message
 * gets a phase and no analysis. Without an answer the suggestions still come, just less tailored.
 */
async function readConversation(run: ModelRun): Promise<Reading> {
  let data: z.infer<typeof phaseOutputSchema>;
  try {
    const request = buildPhaseRequest(run.conversation.slice(-RECENT_MESSAGES), { language: run.language ?? undefined });
    ({ data } = await run.engine.completeStructured(request, phaseOutputSchema, { kind: "phase", userId: run.userId, signal: run.signal, order: run.engine.analysisOrder }));
  } catch (error) {
    if (!(error instanceof AiError) || error.code === "AI_CANCELLED") throw error;
    run.ctx.logger.warn("phase detection failed; generating without a phase", { code: error.code });
    return { phase: null, analysis: null };
  }
  const { phase, confidence, ...read } = data;
  const generationId = run.generation.id;
  const analysis = canAnalyse(run.conversation) ? { ...read, investment: investmentOf(run.conversation), generationId } : null;
  await recordPhase(run.ctx.db, run.generation.sessionId, { phase, confidence, analysis });
  await run.events.publish({ type: "phase", data: { generationId, phase, confidence } });
  if (analysis) {
    const { generationId: _, ...fields } = analysis;
    await run.events.publish({ type: "analysis", data: { ...fields, generationId } }, `gen:${generationId}:analysis`);
  }
  return { phase, analysis };
}

/** Coaching notes for the phase, found by the recent messages. Without them the suggestions still come. */
async function retrieveNotes(run: ModelRun, { phase }: Reading) {
  const query = run.conversation.slice(-RECENT_MESSAGES).map((message) => message.text).join("\n");
  const knowledge = await run.engine.retrieve(query, { phase: phase ?? undefined, k: 5, userId: run.userId }).catch((error: unknown) => {
    run.ctx.logger.warn("knowledge retrieval failed; generating without coaching notes", { error });
    return [];
  });
  return knowledge.map(({ title, content }) => ({ title, content }));
}

/**
 * Streams the suggestions: `suggestion.started`, then each suggestion's characters as
 * `suggestion.delta` (see `streamTexts`). Answers the parsed suggestions once the room has every event.
 */
async function streamSuggestions(run: ModelRun, reading: Reading, knowledge: Array<{ title: string; content: string }>): Promise<Answer> {
  const { generation, events } = run;
  const generationId = generation.id;
  const tone = generation.tone ?? DEFAULT_TONE;
  // The user's choice of language wins; else the conversation's, as the analysis read it.
  const language = run.language ?? reading.analysis?.language ?? null;
  const request = buildSuggestionsRequest({
    messages: run.conversation,
    phase: reading.phase,
    tone,
    count: generation.count,
    instructions: generation.instructions ?? undefined,
    language: language ?? undefined,
    knowledge,
    analysis: reading.analysis ? { nextMove: reading.analysis.nextMove, signals: reading.analysis.signals } : undefined,
  });
  await events.publish({ type: "suggestion.started", data: { generationId, count: generation.count, tone } });
  // An answer with the wrong number of suggestions, or not fitting at all, is retried by the
  // engine like any other fault (after a `restart`), so what is stored is exactly `count`.
  const done = await streamTexts(
    { engine: run.engine, events, generationId },
    {
      request,
      kind: "suggestions",
      userId: run.userId,
      signal: run.signal,
      parse: parseJsonOutput(suggestionsOutputSchema(generation.count)),
      texts: { array: "suggestions", field: "text", count: generation.count, delta: "suggestion.delta" },
    },
  );
  return { output: done.output.suggestions, tone, language, provider: done.provider, model: done.model };
}

/**
 * Stores the suggestions and completes the generation and the session in one transaction —
 * only while this run still holds the generation, so a run that lost its lease writes nothing.
 */
async function storeSuggestions({ ctx, generation, owner }: Run, answer: Answer) {
  const { id: generationId, sessionId } = generation;
  const rows = answer.output.map(({ text }, rank) => ({ id: newId(), rank, tone: answer.tone, text }));
  const completedHere = sql`exists (select 1 from ${suggestionGenerations} where ${and(eq(suggestionGenerations.id, generationId), eq(suggestionGenerations.status, "completed"), leaseHeldBy(lease, owner))})`;
  const [[completed], , [ready]] = await ctx.db.batch([
    ctx.db
      .update(suggestionGenerations)
      .set({ status: "completed", provider: answer.provider, model: answer.model, language: answer.language, ...releaseLease() })
      .where(and(eq(suggestionGenerations.id, generationId), eq(suggestionGenerations.status, "streaming"), leaseHeldBy(lease, owner)))
      .returning({ id: suggestionGenerations.id }),
    ctx.db.execute(sql`
      insert into ${suggestions} (id, generation_id, session_id, rank, tone, text)
      select x.id, ${generationId}, ${sessionId}, x.rank, x.tone, x.text
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(id text, rank smallint, tone text, text text)
      where ${completedHere}
      on conflict do nothing`),
    transitionStatement(ctx.db, { sessionId, to: "ready", from: ["generating"], when: completedHere }),
  ]);
  if (!completed) return undefined;
  const saved = await ctx.db.select().from(suggestions).where(eq(suggestions.generationId, generationId)).orderBy(asc(suggestions.rank));
  return { saved, ready };
}

/** Stores the answer, then tells the room: `suggestion.completed` (ids and texts), then the session's ready status. */
async function completeGeneration(run: Run, answer: Answer) {
  const generationId = run.generation.id;
  const stored = await storeSuggestions(run, answer);
  if (!stored) return { skipped: true };
  await run.events.publish(
    {
      type: "suggestion.completed",
      data: { generationId, suggestions: stored.saved.map(({ id, rank, tone, text }) => ({ id, rank, tone, text })) },
    },
    `gen:${generationId}:completed`,
  );
  if (stored.ready) await broadcastStatus(run.ctx.broadcast, stored.ready, { key: `gen:${generationId}:ready` });
  return { suggestions: stored.saved.length };
}

/**
 * The suggestion job (SPEC §7–8): claim the generation → load the conversation → detect its
 * phase → retrieve coaching notes for that phase → stream the suggestions token by token through
 * the session's room → store them → end (completed, cancelled or failed). A `cancel` frame
 * aborts the upstream call; a fallback after tokens went out is announced as
 * `generation.restarted`; a final AI failure ends the generation `failed`. The run holds a
 * lease on the generation, renewed while it lives: if it dies, a redelivery takes over.
 */
async function runSuggestionJob(ctx: JobContext, { generationId }: { generationId: string }) {
  const owner = newLeaseOwner(ctx.messageId);
  const generation = await claimGeneration(ctx, generationId, owner);
  if (!generation) return { skipped: true };
  const run: Run = { ctx, generation, owner, held: leaseHeldBy(lease, owner), events: createRunPublisher(ctx, sessionRoom(generation.sessionId), generationId) };
  if (ctx.retried > 0) await run.events.publish({ type: "generation.restarted", data: { generationId, reason: "retry" } });

  const session = await loadConversation(ctx, generation.sessionId);
  if (!session) {
    await endGeneration(ctx, generation, { status: "failed", code: "SESSION_CHANGED" }, run.held);
    return { skipped: true };
  }

  const heartbeat = holdGeneration(run);
  const stopCancelWatch = watchForCancel(ctx.env, sessionRoom(generation.sessionId), generationId, heartbeat.abort, ctx.logger, run.events.lastHeard);
  const modelRun: ModelRun = { ...run, ...session, engine: aiEngineFor(ctx.config, ctx.db), signal: heartbeat.abort.signal };
  try {
    const reading = await readConversation(modelRun);
    const knowledge = await retrieveNotes(modelRun, reading);
    const answer = await streamSuggestions(modelRun, reading, knowledge);
    return await completeGeneration(run, answer);
  } catch (error) {
    return await endAfterFailure(run, heartbeat, error, {
      end: (outcome) => endGeneration(ctx, generation, outcome, run.held),
      releaseLease: () =>
        ctx.db
          .update(suggestionGenerations)
          .set(releaseLease())
          .where(and(eq(suggestionGenerations.id, generation.id), eq(suggestionGenerations.status, "streaming"), run.held)),
    });
  } finally {
    await stopCancelWatch();
    await heartbeat.stop();
  }
}

/**
 * QStash gave up on the job: the generation and its session fail, and the room is told — unless
 * a run still holds a live lease on it (it is alive, just slow; it finishes or its lease lapses).
 */
async function failSuggestionJob(ctx: JobContext, { generationId }: { generationId: string }) {
  const [generation] = await ctx.db.select().from(suggestionGenerations).where(eq(suggestionGenerations.id, generationId));
  if (generation) await endGeneration(ctx, generation, { status: "failed", code: "JOB_FAILED" }, leaseLapsed(lease));
}

/**
 * The periodic sweep: ends generations whose run died and was never taken over (lease lapsed
 * long ago), and those that were never picked up at all, so no session stays `generating`.
 */
async function sweepSuggestionRuns(ctx: JobContext, { at }: { at?: string }) {
  const stale = and(
    inArray(suggestionGenerations.status, ["queued", "streaming"]),
    staleRun({ expiresAt: suggestionGenerations.leaseExpiresAt, updatedAt: suggestionGenerations.updatedAt }, ctx.config.JOB_LEASE_SECONDS, at === undefined ? undefined : jobInstant(at)),
  )!;
  const found = await ctx.db
    .select({ id: suggestionGenerations.id, sessionId: suggestionGenerations.sessionId })
    .from(suggestionGenerations)
    .where(stale)
    .limit(SWEEP_BATCH);
  for (const generation of found) {
    await endGeneration(ctx, generation, { status: "failed", code: "JOB_LOST" }, stale);
  }
  return { swept: found.length };
}

export const suggestionJob: JobDefinition<{ generationId: string }> = {
  name: "suggestions",
  payload: z.object({ generationId: z.string().min(1).max(64) }),
  run: runSuggestionJob,
  fail: failSuggestionJob,
};

export const suggestionSweepJob: JobDefinition<{ at?: string }> = {
  name: "sweep-suggestions",
  payload: z.object({ at: jobInstantSchema }).strict(),
  // Runs that died and were never taken over end `failed`, so no session stays busy for long.
  schedule: { id: "charisma-sweep-suggestions", cron: "*/5 * * * *" },
  run: sweepSuggestionRuns,
  // A sweep that failed every retry changes nothing; the next scheduled one tries again.
  fail: async (ctx) => ctx.logger.warn("suggestion sweep gave up"),
};
