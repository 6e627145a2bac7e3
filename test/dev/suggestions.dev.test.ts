import { describe, expect, it } from "vitest";
import { expectJson, seedSession } from "../../local/api-client.ts";
import { DEV_AI_PACING } from "../../local/dev-stack.ts";
import { api, openDevSocket, useDevStack } from "./stack.ts";

// The AI upstream paces like a real model here, as in `npm run dev`: this is what a person
// watching the tokens does, on the real wrangler dev.
describe("cancelling a generation someone is watching, under wrangler dev", () => {
  const fixture = useDevStack();

  it("ends it `cancelled` when the cancel follows the first suggestion.delta, and the session is ready again", async () => {
    const { url, token: mint, aiUpstream } = fixture.stack;
    const token = await mint("user_dev_cancel");
    const sessionId = await seedSession(url, token, 4);
    const socket = await openDevSocket(url, `/api/v1/sessions/${sessionId}/ws`);
    socket.send({ type: "authenticate", token });
    await socket.frame("authenticated");

    const started = await expectJson<{ data: { generationId: string; wsUrl: string } }>(
      await api(url, token, `/api/v1/sessions/${sessionId}/generate-suggestions`, { method: "POST", body: {} }),
      202,
      "POST generate-suggestions",
    );
    const { generationId } = started.data;
    const mine = (type: string) => socket.frames.filter((frame) => frame.type === type && frame.generationId === generationId);
    await socket.frame("suggestion.delta", 0, 30_000);
    socket.send({ type: "cancel", generationId });

    const end = await Promise.race([socket.frame("generation.cancelled", 0, 15_000), socket.frame("suggestion.completed", 0, 15_000)]);
    expect(end).toMatchObject({ type: "generation.cancelled", generationId });
    expect(mine("suggestion.completed")).toEqual([]);
    // Cancelled mid-stream: the upstream request was aborted before its last token.
    const request = aiUpstream.requests().find((recorded) => JSON.stringify(recorded.body).includes('"suggestions"'));
    expect(request).toMatchObject({ completed: false });
    console.log(
      `cancelled after the first suggestion.delta: ${mine("suggestion.delta").length} deltas reached the socket, ` +
        `${request?.streamed.length} upstream tokens were streamed (upstream paced ${DEV_AI_PACING.firstTokenMs} ms + ${DEV_AI_PACING.tokenMs} ms/token)`,
    );

    const ready = async () => {
      const { data } = await expectJson<{ data: { status: string } }>(await api(url, token, `/api/v1/sessions/${sessionId}`), 200, "GET session");
      return data.status;
    };
    const deadline = Date.now() + 10_000;
    let status = await ready();
    while (status !== "ready" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = await ready();
    }
    expect(status).toBe("ready");
    socket.close();
  });
});
