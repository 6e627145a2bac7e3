import { describe, expect, it } from "vitest";
import type { PublishAnswer, PublishOptions, RoomEvent } from "../../realtime/protocol";
import type { JobContext } from "./definition";
import { createRunPublisher } from "./generation-run";

/** A room whose publishes wait until released, as a busy room's round trip does. */
function slowRoom(answer: (n: number) => PublishAnswer | undefined = () => undefined) {
  const sent: Array<{ event: RoomEvent; key: string; cancelOf?: string }> = [];
  const gates: Array<() => void> = [];
  const broadcast = (_room: unknown, event: RoomEvent, options: Required<PublishOptions>) => {
    sent.push({ event: structuredClone(event), key: options.key, cancelOf: options.cancelOf });
    const n = sent.length;
    return new Promise<PublishAnswer | undefined>((resolve) => gates.push(() => resolve(answer(n))));
  };
  const ctx = { broadcast, messageId: "msg_1", retried: 0 } as unknown as JobContext;
  const settle = async () => {
    // Lets the chain reach its next publish, then opens every gate so far.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gates.splice(0).forEach((open) => open());
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { ctx, sent, settle };
}

const delta = (index: number, text: string): RoomEvent => ({ type: "suggestion.delta", data: { generationId: "gen_1", index, delta: text } });

describe("createRunPublisher", () => {
  it("sends each delta at once while the room keeps up", async () => {
    const room = slowRoom();
    const events = createRunPublisher(room.ctx, { kind: "session", id: "s" }, "gen_1");
    for (const text of ["Hey", " there", "!"]) {
      void events.publish(delta(0, text));
      await room.settle();
    }
    await events.settled();
    expect(room.sent.map(({ event, key }) => [(event.data as { delta: string }).delta, key])).toEqual([
      ["Hey", "gen:gen_1:msg_1:0:0"],
      [" there", "gen:gen_1:msg_1:0:1"],
      ["!", "gen:gen_1:msg_1:0:2"],
    ]);
  });

  it("folds the deltas of one text queued behind a slow publish into one event, in order", async () => {
    const room = slowRoom();
    const events = createRunPublisher(room.ctx, { kind: "session", id: "s" }, "gen_1");
    void events.publish(delta(0, "Hey"));
    await new Promise((resolve) => setTimeout(resolve, 0));
    // The first is in flight: what follows waits, and folds while it waits.
    for (const [index, text] of [[0, " there"], [0, ", you"], [1, "So"], [1, " what"], [0, "late"]] as const) void events.publish(delta(index, text));
    void events.publish({ type: "suggestion.completed", data: { generationId: "gen_1", suggestions: [] } } as unknown as RoomEvent, "gen:gen_1:done");
    void events.publish(delta(1, "after a keyed event"));
    while (room.sent.length < 6) await room.settle();
    await room.settle();
    await events.settled();
    expect(room.sent.map(({ event }) => (event.type === "suggestion.delta" ? `${event.data.index}:${event.data.delta}` : event.type))).toEqual([
      "0:Hey",
      "0: there, you",
      "1:So what",
      "0:late",
      "suggestion.completed",
      "1:after a keyed event",
    ]);
    // Keys stay one per event sent, in order: a duplicate delivery's events are still recognised.
    expect(room.sent.map(({ key }) => key)).toEqual(["gen:gen_1:msg_1:0:0", "gen:gen_1:msg_1:0:1", "gen:gen_1:msg_1:0:2", "gen:gen_1:msg_1:0:3", "gen:gen_1:done", "gen:gen_1:msg_1:0:4"]);
  });

  it("asks after its generation's cancel with every publish, and keeps the room's latest answer", async () => {
    // The second publish finds the room unreachable (no answer): the first answer stays the latest.
    const room = slowRoom((n) => (n === 2 ? undefined : { seq: n, duplicate: false, cancelRequested: n >= 3 }));
    const events = createRunPublisher(room.ctx, { kind: "session", id: "s" }, "gen_1");
    expect(events.lastHeard()).toBeUndefined();
    const before = Date.now();
    void events.publish(delta(0, "Hey"));
    await room.settle();
    expect(events.lastHeard()).toEqual({ at: expect.any(Number), cancelRequested: false });
    expect(events.lastHeard()!.at).toBeGreaterThanOrEqual(before);
    const first = events.lastHeard();
    void events.publish(delta(1, "So"));
    await room.settle();
    expect(events.lastHeard()).toBe(first);
    void events.publish(delta(0, " there"));
    await room.settle();
    await events.settled();
    expect(events.lastHeard()).toMatchObject({ cancelRequested: true });
    expect(room.sent.map(({ cancelOf }) => cancelOf)).toEqual(["gen_1", "gen_1", "gen_1"]);
  });
});
