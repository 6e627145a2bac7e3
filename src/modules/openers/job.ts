import { and, asc, eq, inArray, or, type SQL, sql } from "drizzle-orm";
import { z } from "zod";
import { type AiEngine, aiEngineFor } from "../../ai/engine";
import { buildOpenerRequest, openersOutputSchema } from "../../ai/prompts/opener.v1";
import { buildPhotoRequest, photoOutputSchema } from "../../ai/prompts/photo.v1";
import { AiError, parseJsonOutput } from "../../ai/strategy";
import { magicOpeners, openerGenerations } from "../../db/schema";
import { toBase64 } from "../../lib/encoding";
import { AppError } from "../../lib/errors";
import { newId } from "../../lib/ids";
import { holdLease, leaseHeldBy, leaseLapsed, newLeaseOwner, releaseLease, staleRun, takeLease } from "../../lib/lease";
import { watchForCancel } from "../../realtime/rooms";
import { type JobContext, type JobDefinition, jobInstant, jobInstantSchema } from "../jobs/definition";
import { announceEnd, createRunPublisher, endAfterFailure, type GenerationOutcome, type RunPublisher, streamTexts } from "../jobs/generation-run";
import { finishedUploadOf } from "../uploads/service";
import { openerRoom } from "./room";

/** Stale runs the sweep ends per delivery, so one sweep never does unbounded work. */
const SWEEP_BATCH = 100;

type Generation = typeof openerGenerations.$inferSelect;
const lease = { owner: openerGenerations.leaseOwner, expiresAt: openerGenerations.leaseExpiresAt };

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

/** A run as the model calls need it. */
type ModelRun = Run & { engine: AiEngine; signal: AbortSignal };

type Answer = { output: Array<{ text: string }>; language: string; provider: string; model: string };

/**
 * Takes the generation for this run: a queued one, or one whose last run's lease lapsed (that
 * run died). While another run's lease is live the delivery is refused (503), so QStash
 * delivers it again later instead of counting it done; finished work answers `undefined`.
 */
async function claimGeneration(ctx: JobContext, generationId: string, owner: string): Promise<Generation | undefined> {
  const [claimed] = await ctx.db
    .update(openerGenerations)
    .set({ status: "streaming", errorCode: null, ...takeLease(owner, ctx.config.JOB_LEASE_SECONDS) })
    .where(
      and(
        eq(openerGenerations.id, generationId),
        or(eq(openerGenerations.status, "queued"), and(eq(openerGenerations.status, "streaming"), leaseLapsed(lease))),
      ),
    )
    .returning();
  if (claimed) return claimed;
  const [current] = await ctx.db.select({ status: openerGenerations.status }).from(openerGenerations).where(eq(openerGenerations.id, generationId));
  if (current?.status === "streaming") throw new AppError("JOB_RUN_IN_PROGRESS");
  return undefined;
}

/** Ends a generation that will not complete — only when `guard` holds for it (the run's own lease, or a lapsed one). Idempotent. */
async function endGeneration(ctx: JobContext, generationId: string, outcome: GenerationOutcome, guard: SQL) {
  const ended = await ctx.db
    .update(openerGenerations)
    .set({ status: outcome.status, errorCode: outcome.status === "failed" ? outcome.code : null, ...releaseLease() })
    .where(and(eq(openerGenerations.id, generationId), inArray(openerGenerations.status, ["queued", "streaming"]), guard))
    .returning({ id: openerGenerations.id });
  if (ended.length > 0) await announceEnd(ctx.broadcast, openerRoom(generationId), generationId, outcome);
}

/** Renews the run's lease while it lives; `abort` fires if another delivery took the generation. */
function holdGeneration({ ctx, generation, owner, held }: Run) {
  return holdLease({
    seconds: ctx.config.JOB_LEASE_SECONDS,
    renew: async () =>
      (
        await ctx.db
          .update(openerGenerations)
          .set(takeLease(owner, ctx.config.JOB_LEASE_SECONDS))
          .where(and(eq(openerGenerations.id, generation.id), eq(openerGenerations.status, "streaming"), held))
          .returning({ id: openerGenerations.id })
      ).length > 0,
    logger: ctx.logger,
  });
}

/**
 * The match's photo, described by the vision model (visible facts only), to be passed to the
 * opener prompt as data. Without it the openers still come: a photo that is gone or a
 * description that failed is logged (never the key) and the run goes on; a cancel does not.
 */
async function describePhoto(run: ModelRun): Promise<string | undefined> {
  const { ctx, generation } = run;
  const key = generation.profile.photoKey;
  if (!key) return undefined;
  const upload = await finishedUploadOf(ctx.db, generation.userId, key);
  const object = upload ? await ctx.env.IMAGES.get(upload.r2Key) : null;
  if (!upload || !object) {
    ctx.logger.warn("the opener's photo is gone; generating without it");
    return undefined;
  }
  const image = { mimeType: upload.contentType, base64: toBase64(new Uint8Array(await object.arrayBuffer())) };
  try {
    const { data } = await run.engine.completeStructured(buildPhotoRequest(image), photoOutputSchema, {
      kind: "opener",
      userId: generation.userId,
      signal: run.signal,
      order: run.engine.ocrOrder,
      totalTimeoutMs: ctx.config.AI_OCR_TIMEOUT_MS,
    });
    return data.description;
  } catch (error) {
    if (!(error instanceof AiError) || error.code === "AI_CANCELLED") throw error;
    ctx.logger.warn("photo description failed; generating without it", { code: error.code });
    return undefined;
  }
}

/** Streams the openers as `opener.delta` (see `streamTexts`); answers exactly `count` of them. */
async function streamOpeners(run: ModelRun, photoDescription: string | undefined): Promise<Answer> {
  const { generation } = run;
  // The key names an object in R2: the model gets the photo's description, never its key.
  const { photoKey: _, ...profile } = generation.profile;
  const request = buildOpenerRequest({
    profile,
    photoDescription,
    tone: generation.tone,
    count: generation.count,
    language: generation.language ?? undefined,
  });
  const done = await streamTexts(
    { engine: run.engine, events: run.events, generationId: generation.id },
    {
      request,
      kind: "opener",
      userId: generation.userId,
      signal: run.signal,
      parse: parseJsonOutput(openersOutputSchema(generation.count)),
      texts: { array: "openers", field: "text", count: generation.count, delta: "opener.delta" },
    },
  );
  return { output: done.output.openers, language: done.output.language, provider: done.provider, model: done.model };
}

/**
 * Stores the openers and completes the generation in one transaction — only while this run
 * still holds the generation, so a run that lost its lease writes nothing.
 */
async function storeOpeners({ ctx, generation, owner }: Run, answer: Answer) {
  const { id: generationId } = generation;
  const rows = answer.output.map(({ text }, rank) => ({ id: newId(), rank, text }));
  const completedHere = sql`exists (select 1 from ${openerGenerations} where ${and(eq(openerGenerations.id, generationId), eq(openerGenerations.status, "completed"), leaseHeldBy(lease, owner))})`;
  const [[completed]] = await ctx.db.batch([
    ctx.db
      .update(openerGenerations)
      // The language asked for, else the one the model wrote in (the profile's).
      .set({ status: "completed", provider: answer.provider, model: answer.model, language: sql`coalesce(${openerGenerations.language}, ${answer.language})`, ...releaseLease() })
      .where(and(eq(openerGenerations.id, generationId), eq(openerGenerations.status, "streaming"), leaseHeldBy(lease, owner)))
      .returning({ id: openerGenerations.id }),
    ctx.db.execute(sql`
      insert into ${magicOpeners} (id, user_id, generation_id, rank, profile, tone, text, provider, model)
      select x.id, ${generation.userId}, ${generationId}, x.rank, ${JSON.stringify(generation.profile)}::jsonb, ${generation.tone}, x.text, ${answer.provider}, ${answer.model}
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(id text, rank smallint, text text)
      where ${completedHere}
      on conflict do nothing`),
  ]);
  if (!completed) return undefined;
  return ctx.db.select().from(magicOpeners).where(eq(magicOpeners.generationId, generationId)).orderBy(asc(magicOpeners.rank));
}

/** Stores the answer, then tells the room: `opener.completed` with the stored ids and texts. */
async function completeGeneration(run: Run, answer: Answer) {
  const generationId = run.generation.id;
  const saved = await storeOpeners(run, answer);
  if (!saved) return { skipped: true };
  await run.events.publish(
    { type: "opener.completed", data: { generationId, openers: saved.map(({ id, rank, tone, text }) => ({ id, rank, tone, text })) } },
    `gen:${generationId}:completed`,
  );
  return { openers: saved.length };
}

/**
 * The magic-opener job (SPEC §4, §6, §8): claim the generation → describe the match's photo,
 * if any → stream the openers token by token through the generation's room → store them →
 * end (completed, cancelled or failed). A `cancel` frame aborts the upstream call; a fallback
 * after tokens went out is announced as `generation.restarted`; a final AI failure or a spent
 * budget ends the generation `failed`. The run holds a lease on the generation, renewed while it
 * lives: if it dies, a redelivery takes over.
 */
async function runOpenerJob(ctx: JobContext, { generationId }: { generationId: string }) {
  const owner = newLeaseOwner(ctx.messageId);
  const generation = await claimGeneration(ctx, generationId, owner);
  if (!generation) return { skipped: true };
  const room = openerRoom(generationId);
  const run: Run = { ctx, generation, owner, held: leaseHeldBy(lease, owner), events: createRunPublisher(ctx, room, generationId) };
  if (ctx.retried > 0) await run.events.publish({ type: "generation.restarted", data: { generationId, reason: "retry" } });

  const heartbeat = holdGeneration(run);
  const stopCancelWatch = watchForCancel(ctx.env, room, generationId, heartbeat.abort, ctx.logger, run.events.lastHeard);
  const modelRun: ModelRun = { ...run, engine: aiEngineFor(ctx.config, ctx.db), signal: heartbeat.abort.signal };
  try {
    const photoDescription = await describePhoto(modelRun);
    const answer = await streamOpeners(modelRun, photoDescription);
    return await completeGeneration(run, answer);
  } catch (error) {
    return await endAfterFailure(run, heartbeat, error, {
      end: (outcome) => endGeneration(ctx, generationId, outcome, run.held),
      releaseLease: () =>
        ctx.db
          .update(openerGenerations)
          .set(releaseLease())
          .where(and(eq(openerGenerations.id, generationId), eq(openerGenerations.status, "streaming"), run.held)),
    });
  } finally {
    await stopCancelWatch();
    await heartbeat.stop();
  }
}

/**
 * QStash gave up on the job: the generation fails and the room is told — unless a run still
 * holds a live lease on it (it is alive, just slow; it finishes or its lease lapses).
 */
async function failOpenerJob(ctx: JobContext, { generationId }: { generationId: string }) {
  await endGeneration(ctx, generationId, { status: "failed", code: "JOB_FAILED" }, leaseLapsed(lease));
}

/**
 * The periodic sweep: ends generations whose run died and was never taken over (lease lapsed
 * long ago), and those that were never picked up at all, so none stays `streaming` or `queued`.
 */
async function sweepOpenerRuns(ctx: JobContext, { at }: { at?: string }) {
  const stale = and(
    inArray(openerGenerations.status, ["queued", "streaming"]),
    staleRun({ expiresAt: openerGenerations.leaseExpiresAt, updatedAt: openerGenerations.updatedAt }, ctx.config.JOB_LEASE_SECONDS, at === undefined ? undefined : jobInstant(at)),
  )!;
  const found = await ctx.db.select({ id: openerGenerations.id }).from(openerGenerations).where(stale).limit(SWEEP_BATCH);
  for (const { id } of found) await endGeneration(ctx, id, { status: "failed", code: "JOB_LOST" }, stale);
  return { swept: found.length };
}

export const openerJob: JobDefinition<{ generationId: string }> = {
  name: "openers",
  payload: z.object({ generationId: z.string().min(1).max(64) }),
  run: runOpenerJob,
  fail: failOpenerJob,
};

export const openerSweepJob: JobDefinition<{ at?: string }> = {
  name: "sweep-openers",
  payload: z.object({ at: jobInstantSchema }).strict(),
  // Runs that died and were never taken over end `failed`, so no generation stays open for long.
  schedule: { id: "charisma-sweep-openers", cron: "*/5 * * * *" },
  run: sweepOpenerRuns,
  // A sweep that failed every retry changes nothing; the next scheduled one tries again.
  fail: async (ctx) => ctx.logger.warn("opener sweep gave up"),
};
