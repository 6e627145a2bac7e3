import { eq, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, json, resetDatabase, signedInUser, testDb } from "../../../test/helpers";
import { deliverJob, eventually, jobFailureCallback, resetQStash } from "../../../test/jobs";
import { injectFault, resetUpstream, upstreamRequests } from "../../../test/upstream";
import { openSocket } from "../../../test/ws";
import { sessions, suggestionGenerations, suggestions } from "../../db/schema";

/**
 * A generation whose run died: the session is `generating` and the generation `streaming`,
 * held by a run that stopped renewing its lease `lapsedSecondsAgo` seconds ago (negative: the
 * lease is still live, as for a run that is alive elsewhere).
 */
async function orphanedGeneration(lapsedSecondsAgo: number) {
  const { token } = await signedInUser();
  const created = await json<{ id: string }>(
    await callAs(token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages: [{ sender: "match", text: "So, tacos or ramen?" }] } }),
  );
  if (!created.success) throw new Error("no session");
  const sessionId = created.data.id;
  await testDb().update(sessions).set({ status: "generating" }).where(eq(sessions.id, sessionId));
  const [generation] = await testDb()
    .insert(suggestionGenerations)
    .values({
      sessionId,
      count: 2,
      tone: "playful",
      status: "streaming",
      leaseOwner: "msg_dead:run",
      leaseExpiresAt: sql`now() - make_interval(secs => ${lapsedSecondsAgo})`,
      updatedAt: sql`now() - make_interval(secs => ${Math.max(lapsedSecondsAgo, 0)})`,
    })
    .returning();
  const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
  socket.send({ type: "authenticate", token });
  await socket.frame("authenticated");
  return { token, sessionId, generationId: generation!.id, socket };
}

const generationRow = async (id: string) => (await testDb().select().from(suggestionGenerations).where(eq(suggestionGenerations.id, id)))[0];
const sessionRow = async (id: string) => (await testDb().select().from(sessions).where(eq(sessions.id, id)))[0];

describe("suggestion runs hold a lease", () => {
  beforeEach(async () => {
    await resetDatabase();
    await resetUpstream();
    await resetQStash();
  });

  it("refuses a redelivery with 503 while another run's lease is live, so QStash delivers it again", async () => {
    const { generationId, sessionId } = await orphanedGeneration(-60);
    const response = await deliverJob("suggestions", { generationId }, { retried: 1 });
    expect(response.status).toBe(503);
    expect(await json(response)).toMatchObject({ error: { code: "JOB_RUN_IN_PROGRESS" } });
    expect(await generationRow(generationId)).toMatchObject({ status: "streaming", leaseOwner: "msg_dead:run" });
    expect((await sessionRow(sessionId))?.status).toBe("generating");
    expect(await upstreamRequests()).toEqual([]);
  });

  it("takes over a run that died mid-stream once its lease lapsed, and completes it", async () => {
    const { generationId, sessionId, socket } = await orphanedGeneration(1);
    const response = await deliverJob("suggestions", { generationId }, { retried: 1 });
    expect(response.status).toBe(200);
    const completed = await socket.frame("suggestion.completed", 0, 15_000);
    expect(completed.suggestions).toHaveLength(2);
    // The phone is told to drop whatever the dead run had streamed.
    expect(socket.frames.findIndex((frame) => frame.type === "generation.restarted")).toBeLessThan(
      socket.frames.findIndex((frame) => frame.type === "suggestion.delta"),
    );
    expect(await generationRow(generationId)).toMatchObject({ status: "completed" });
    expect((await sessionRow(sessionId))?.status).toBe("ready");
    expect(await testDb().select().from(suggestions)).toHaveLength(2);
  });

  it("stops a run whose lease another delivery took, and lets it write nothing", async () => {
    const { generationId, sessionId } = await orphanedGeneration(1);
    // Slow enough that the heartbeat (every second) notices the take-over mid-stream.
    await injectFault({ tokenDelayMs: 250 }, { vendor: "openai", match: "suggestions" });
    const running = deliverJob("suggestions", { generationId }, { messageId: "msg_slow" });
    await eventually(async () => (await upstreamRequests()).find((r) => r.streamed.length > 2 && JSON.stringify(r.body).includes('"suggestions"')), "the stream to start");
    await testDb().update(suggestionGenerations).set({ leaseOwner: "msg_other:run" }).where(eq(suggestionGenerations.id, generationId));
    const answer = await running;
    expect(await json(answer)).toMatchObject({ data: { skipped: "lease lost" } });
    expect(await generationRow(generationId)).toMatchObject({ status: "streaming", leaseOwner: "msg_other:run" });
    expect(await testDb().select().from(suggestions)).toEqual([]);
    expect((await sessionRow(sessionId))?.status).toBe("generating");
    const aborted = (await upstreamRequests()).find((r) => JSON.stringify(r.body).includes('"suggestions"'));
    expect(aborted?.completed).toBe(false);
  });

  it("lets the failure callback fail a generation whose run is gone, but not one whose run is alive", async () => {
    const failure = (generationId: string) => jobFailureCallback("suggestions", { generationId }, { status: 503, retried: 1 });
    const alive = await orphanedGeneration(-60);
    expect((await deliverJob("failed", failure(alive.generationId))).status).toBe(200);
    expect((await generationRow(alive.generationId))?.status).toBe("streaming");

    const dead = await orphanedGeneration(1);
    expect((await deliverJob("failed", failure(dead.generationId))).status).toBe(200);
    expect(await generationRow(dead.generationId)).toMatchObject({ status: "failed", errorCode: "JOB_FAILED" });
    expect(await sessionRow(dead.sessionId)).toMatchObject({ status: "failed", errorCode: "JOB_FAILED" });
    await dead.socket.frame("generation.failed");
  });

  it("sweeps a generation whose lease lapsed long ago, and one never picked up, leaving recent ones", async () => {
    const stale = await orphanedGeneration(3 * 10 + 5);
    const recent = await orphanedGeneration(2);
    const { userId } = await signedInUser();
    const [idle] = await testDb().insert(sessions).values({ userId, type: "text", status: "generating" }).returning();
    const [neverStarted] = await testDb()
      .insert(suggestionGenerations)
      .values({ sessionId: idle!.id, count: 1, updatedAt: sql`now() - interval '1 hour'`, createdAt: sql`now() - interval '1 hour'` })
      .returning();

    const response = await deliverJob("sweep-suggestions", {});
    expect(await json(response)).toMatchObject({ data: { swept: 2 } });
    expect(await generationRow(stale.generationId)).toMatchObject({ status: "failed", errorCode: "JOB_LOST" });
    expect(await generationRow(neverStarted!.id)).toMatchObject({ status: "failed", errorCode: "JOB_LOST" });
    expect((await generationRow(recent.generationId))?.status).toBe("streaming");
    expect(await sessionRow(stale.sessionId)).toMatchObject({ status: "failed", failedFrom: "generating", errorCode: "JOB_LOST" });
    expect(await stale.socket.frame("generation.failed")).toMatchObject({ generationId: stale.generationId, code: "JOB_LOST" });

    // The session the sweep failed can be retried and generate again.
    const retried = await callAs(stale.token, `/api/v1/sessions/${stale.sessionId}/retry`, { method: "POST" });
    expect(await json(retried)).toMatchObject({ data: { status: "ready" } });
  });
});
