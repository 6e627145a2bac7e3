import { describe, expect, it } from "vitest";
import { expectJson, seedSession } from "../../local/api-client.ts";
import { api, openDevSocket, useDevStack } from "./stack.ts";

// A generation whose Worker dies mid-stream — the whole wrangler dev killed at once, as a crash
// or a deploy would — reaches its end by itself: QStash delivers the job again, the new run
// takes over once the dead run's lease lapsed, and the session is ready with its suggestions.
describe("a suggestion run killed mid-stream, under wrangler dev", () => {
  const fixture = useDevStack({
    // A short lease (renewed every second) and quick retries keep the wait short; the logic is the same.
    vars: { JOB_LEASE_SECONDS: "3" },
    qstashRetryDelayScale: 0.05,
    aiPacing: { firstTokenMs: 200, tokenMs: 100 },
  });

  it("is taken over by QStash's next delivery and completes; the session is ready again", async () => {
    const { url, token: mint, wrangler } = fixture.stack;
    const token = await mint("user_dev_crash");
    const sessionId = await seedSession(url, token, 4);
    const first = await openDevSocket(url, `/api/v1/sessions/${sessionId}/ws`);
    first.send({ type: "authenticate", token });
    await first.frame("authenticated");
    const started = await expectJson<{ data: { generationId: string } }>(
      await api(url, token, `/api/v1/sessions/${sessionId}/generate-suggestions`, { method: "POST", body: { count: 2 } }),
      202,
      "POST generate-suggestions",
    );
    const { generationId } = started.data;
    await first.frame("suggestion.delta", 0, 30_000);
    const lastSeq = Math.max(...first.frames.map((frame) => (typeof frame.seq === "number" ? frame.seq : 0)));

    const crashed = performance.now();
    await wrangler.crashAndRestart();
    const restartedAfter = performance.now() - crashed;

    // The phone reconnects and resumes after the last event it saw.
    const again = await openDevSocket(url, `/api/v1/sessions/${sessionId}/ws`);
    again.send({ type: "authenticate", token, afterSeq: lastSeq });
    await again.frame("authenticated");
    const completed = await again.frame("suggestion.completed", 0, 150_000);
    console.log(
      `wrangler back after ${(restartedAfter / 1000).toFixed(1)} s; the generation completed ${((performance.now() - crashed) / 1000).toFixed(1)} s after the crash`,
    );
    expect(completed).toMatchObject({ generationId });
    expect(completed.suggestions).toHaveLength(2);
    // The new run told the phone to drop what the dead one had streamed.
    expect(again.frames.some((frame) => frame.type === "generation.restarted" && frame.generationId === generationId)).toBe(true);

    const session = await expectJson<{ data: { status: string; latestGeneration?: { status: string } } }>(
      await api(url, token, `/api/v1/sessions/${sessionId}`),
      200,
      "GET session",
    );
    expect(session.data.status).toBe("ready");
    again.close();
  });
});
