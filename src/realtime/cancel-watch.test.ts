import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { resetDatabase } from "../../test/helpers";
import { authenticatedSocket, seedSession } from "../../test/ws";
import type { Bindings } from "../lib/env";
import { createLogger } from "../lib/logger";
import { sessionRoom } from "../modules/sessions/room";
import { type RoomHearing, watchForCancel } from "./rooms";

const logger = createLogger({ level: "error" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const room = () => ({ kind: "session", id: `w${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}` });

/** A room binding whose `isCancelRequested` answers after `delayMs`, counting the questions. */
function slowRoom(delayMs: number, cancelled: () => boolean) {
  const asked = { total: 0, open: 0, most: 0 };
  const stub = {
    isCancelRequested: async () => {
      asked.total++;
      asked.most = Math.max(asked.most, ++asked.open);
      await sleep(delayMs);
      asked.open--;
      return cancelled();
    },
  };
  return { env: { SESSION_ROOM: { getByName: () => stub } } as unknown as Pick<Bindings, "SESSION_ROOM">, asked };
}

describe("watchForCancel", () => {
  beforeEach(resetDatabase);

  it("aborts the run within a second of a socket's cancel, asking the room while the run publishes nothing", async () => {
    const { sessionId, token } = await seedSession();
    const socket = await authenticatedSocket(`/api/v1/sessions/${sessionId}/ws`, token);
    const abort = new AbortController();
    const aborted = new Promise((resolve) => abort.signal.addEventListener("abort", resolve));
    const stop = watchForCancel(env, sessionRoom(sessionId), "gen1", abort, logger);
    socket.send({ type: "cancel", generationId: "other" });
    await sleep(300);
    expect(abort.signal.aborted).toBe(false);
    const sent = Date.now();
    socket.send({ type: "cancel", generationId: "gen1" });
    await Promise.race([aborted, sleep(2_000)]);
    expect(abort.signal.aborted).toBe(true);
    expect(Date.now() - sent).toBeLessThan(1_000);
    await stop();
  });

  it("hears a cancel from the run's own latest publish, and asks the room nothing while that answer is fresh", async () => {
    const { env: fake, asked } = slowRoom(0, () => false);
    const abort = new AbortController();
    let heard: RoomHearing = { at: Date.now(), cancelRequested: false };
    const refresh = setInterval(() => (heard = { at: Date.now(), cancelRequested: heard.cancelRequested }), 20);
    const stop = watchForCancel(fake, room(), "gen1", abort, logger, () => heard);
    await sleep(400);
    expect(asked.total).toBe(0);
    expect(abort.signal.aborted).toBe(false);
    heard = { at: Date.now(), cancelRequested: true };
    await sleep(250);
    expect(abort.signal.aborted).toBe(true);
    expect(asked.total).toBe(0);
    clearInterval(refresh);
    await stop();
  });

  it("asks the room again once the run's last publish is older than a poll, and aborts on its answer", async () => {
    let stored = false;
    const { env: fake, asked } = slowRoom(0, () => stored);
    const abort = new AbortController();
    const stale: RoomHearing = { at: Date.now(), cancelRequested: false };
    const stop = watchForCancel(fake, room(), "gen1", abort, logger, () => stale);
    await sleep(350);
    expect(asked.total).toBeGreaterThan(0);
    stored = true;
    await sleep(300);
    expect(abort.signal.aborted).toBe(true);
    await stop();
  });

  it("keeps one question open at a time against a slow room, and its stop waits for that question", async () => {
    const { env: fake, asked } = slowRoom(700, () => false);
    const abort = new AbortController();
    const stop = watchForCancel(fake, room(), "gen1", abort, logger);
    await sleep(1_000);
    // Ten ticks passed; a stacking poll would have seven questions open by now.
    expect(asked.most).toBe(1);
    expect(asked.total).toBeGreaterThanOrEqual(1);
    expect(asked.total).toBeLessThanOrEqual(2);
    await stop();
    expect(asked.open).toBe(0);
    const total = asked.total;
    await sleep(300);
    expect(asked.total).toBe(total);
  });
});
