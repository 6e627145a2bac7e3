import type { z } from "@hono/zod-openapi";
import { and, eq, sql } from "drizzle-orm";
import { suggestionGenerations, suggestions } from "../../db/schema";
import type { Database } from "../../lib/db";
import { AppError } from "../../lib/errors";
import { newId } from "../../lib/ids";
import type { PublishJob } from "../../lib/jobs";
import type { Logger } from "../../lib/logger";
import type { Broadcast } from "../../realtime/rooms";
import { transitionSession } from "../sessions/lifecycle";
import { liveSessionExists } from "../sessions/live";
import { conversationLength } from "../sessions/messages";
import { wsUrl } from "../sessions/service";
import { getUser } from "../users/service";
import { DEFAULT_TONE, type feedbackSchema, type generateSuggestionsSchema, type generationSchema } from "./schemas";
import { generationsJson, type GenerationJson } from "./generations";
import { suggestionJob } from "./job";

export type SuggestionDeps = {
  db: Database;
  broadcast: Broadcast;
  publishJob: PublishJob;
  assertWithinBudget(userId: string): Promise<void>;
  publicBaseUrl: string;
  logger: Logger;
};

const DEFAULT_COUNT = 3;

/**
 * Starts a generation: budget first (429 before anything is spent), then the session moves
 * ready → generating (one winner), the generation row is written, and the job is published
 * with the generation id as its deduplication id. The tokens then stream over the room.
 */
export async function startGeneration(deps: SuggestionDeps, userId: string, sessionId: string, input: z.infer<typeof generateSuggestionsSchema>) {
  await deps.assertWithinBudget(userId);
  const owner = { sessionId, userId };
  if ((await conversationLength(deps.db, owner)) === 0) throw new AppError("CONVERSATION_EMPTY");
  const { preferences } = await getUser(deps.db, userId);

  await transitionSession(deps, { ...owner, to: "generating", from: ["ready"] });
  const generationId = newId();
  try {
    await deps.db.insert(suggestionGenerations).values({
      id: generationId,
      sessionId,
      tone: input.tone ?? preferences.defaultTone ?? DEFAULT_TONE,
      count: input.count ?? preferences.suggestionCount ?? DEFAULT_COUNT,
      instructions: input.instructions ?? null,
    });
    await deps.publishJob(suggestionJob, { generationId }, { deduplicationId: `suggestions-${generationId}` });
  } catch (error) {
    // Nothing started: give the session back, and say the queue was unavailable.
    deps.logger.error("suggestion job could not be queued", { error });
    await deps.db.update(suggestionGenerations).set({ status: "failed", errorCode: "JOB_ENQUEUE_FAILED" }).where(eq(suggestionGenerations.id, generationId))
      // The 503 below goes out either way; a generation left `queued` is failed by the sweep.
      .catch((markError: unknown) => deps.logger.warn("generation not marked failed", { error: markError }));
    await transitionSession(deps, { ...owner, to: "ready", from: ["generating"] });
    throw new AppError("SERVICE_UNAVAILABLE", { message: "Suggestions could not be queued; try again", cause: error });
  }
  return { generationId, wsUrl: wsUrl(deps.publicBaseUrl, sessionId) };
}

type Generation = z.infer<typeof generationSchema>;

/** Every generation of the caller's session, newest first, with its suggestions, in one query. */
export async function listGenerations(db: Database, userId: string, sessionId: string): Promise<Generation[]> {
  const { rows } = await db.execute<{ generations: GenerationJson[] }>(
    sql`select ${generationsJson(sessionId)} as generations where ${liveSessionExists({ sessionId, userId })}`,
  );
  const [row] = rows;
  if (!row) throw new AppError("SESSION_NOT_FOUND");
  return row.generations.map((generation) => ({ ...generation, createdAt: new Date(generation.createdAt).toISOString() }));
}

/** Records what the user did with a suggestion (null clears it). Someone else's is a 404. */
export async function setFeedback(db: Database, userId: string, suggestionId: string, input: z.infer<typeof feedbackSchema>) {
  const [row] = await db
    .update(suggestions)
    .set({ feedback: input.feedback })
    .where(
      and(
        eq(suggestions.id, suggestionId),
        liveSessionExists({ sessionId: suggestions.sessionId, userId }),
      ),
    )
    .returning();
  if (!row) throw new AppError("SUGGESTION_NOT_FOUND");
  return { id: row.id, rank: row.rank, tone: row.tone, text: row.text, feedback: row.feedback };
}
