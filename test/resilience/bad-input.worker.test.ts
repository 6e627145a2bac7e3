import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { call } from "../helpers";
import { resetQStash } from "../jobs";
import type { TestSocket } from "../ws";
import { BODY_CLASSES, resolver } from "./arbitraries";
import { expectedFor, FRAME_CLASSES, type FrameCase, frameArb, frameVariants, openIn, provisionRooms, ROOMS, sendFrame } from "./bad-frames";
import { casesOf, type Document, lane, operationsOf, send } from "./bad-requests";
import { countFigures } from "./figures";

// Bad input on every route the API document lists and on every client frame of every room: no
// 5xx, no answer later than 5 s, every refusal a catalog code in the envelope, and sockets that
// stay open where SPEC §6 keeps them open. Cases come from fast-check with a fixed seed, so a
// failure reproduces; its report names the seed and the shrunk case.

const SEED = 0x5eed17;
const CONCURRENCY = 4;

type Offence = { op: string; cls: string; what: string; method: string; status: number; code?: string; problem?: string };

function describeOffence(o: Offence): string {
  const status = o.problem === "hang" ? "no answer in 5 s" : `${o.status}${o.code ? ` ${o.code}` : ""}`;
  return `${o.op} [${o.cls}] ${o.what}${o.method === o.op.split(" ")[0] ? "" : ` as ${o.method}`} → ${status}${o.problem && o.problem !== "hang" ? ` (${o.problem})` : ""}`;
}

/** Runs `tasks` at most `limit` at a time. */
async function pool(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tasks.length) }, async () => {
      while (next < tasks.length) await tasks[next++]!();
    }),
  );
}

describe("bad input", () => {
  let badInputsSent = 0;
  afterAll(async () => {
    // Jobs the cases queued (a generation, an OCR) are not for the next file's job pump.
    await resetQStash();
  });

  it("answers malformed frames of every type on every room, before and after authenticate, as the protocol says", async ({ task }) => {
    const resolve = resolver();
    const cases: FrameCase[] = [];
    let seed = SEED;
    for (const room of ROOMS) {
      for (const phase of ["before authenticate", "after authenticate"] as const) {
        for (const { type } of frameVariants) {
          for (const cls of FRAME_CLASSES) {
            const [data] = fc.sample(frameArb(type, cls, resolve), { seed: seed++, numRuns: 1 });
            cases.push({ room: room.name, phase, frameType: type, cls, data: data! });
          }
        }
      }
    }
    expect(frameVariants.map((variant) => variant.type).sort()).toEqual(["authenticate", "cancel", "ping", "resume"]);

    const owners = await Promise.all([provisionRooms(), provisionRooms()]);
    const wrong: string[] = [];
    let sent = 0;
    let hangs = 0;
    let socketsWronglyClosed = 0;
    let opened = 0;
    // Frames that keep the socket open share one (a few per socket, under the per-second frame
    // limit); a frame that closes it gets its own. Rooms and phases run side by side.
    const groups = ROOMS.flatMap((room) => (["before authenticate", "after authenticate"] as const).map((phase) => ({ room, phase })));
    await Promise.all(
      groups.map(async ({ room, phase }, g) => {
        const owner = owners[g % owners.length]!;
        const queue = cases.filter((c) => c.room === room.name && c.phase === phase);
        let current: { socket: TestSocket; openedAt: number; used: number } | undefined;
        for (const c of queue) {
          const expected = expectedFor(c.data, phase);
          for (let attempt = 0; ; attempt++) {
            if (!current || current.used >= 4 || expected.kind === "close") {
              current?.socket.close();
              current = { ...(await openIn(room, phase, owner, opened++ % 2 === 0)), used: 0 };
            }
            current.used++;
            const result = await sendFrame(current.socket, c.data, expected, current.openedAt);
            sent++;
            const label = `${room.name} room, ${phase}: ${c.frameType} [${c.cls}] ${typeof c.data === "string" ? JSON.stringify(c.data.slice(0, 60)) : `${c.data.byteLength} binary bytes`}`;
            if (expected.kind === "close" || result.outcome !== "as promised") {
              current.socket.close();
              current = undefined;
            }
            // The 1 s authentication deadline of the test Worker passed first: the same frame on a new socket.
            if (result.outcome === "auth deadline" && attempt < 2) continue;
            if (result.outcome === "hang") hangs++;
            if (result.outcome === "wrongly closed") socketsWronglyClosed++;
            if (result.outcome !== "as promised") wrong.push(`${label} → ${result.outcome}: ${result.detail}`);
            break;
          }
        }
        current?.socket.close();
      }),
    );

    countFigures(task, { badInputs: sent, hangs, socketsWronglyClosed });
    badInputsSent += sent;
    const report = [`seed ${SEED} (+ the case's index); ${sent} frames on ${opened} sockets`, ...wrong.slice(0, 40)].join("\n");
    expect(hangs, report).toBe(0);
    expect(socketsWronglyClosed, report).toBe(0);
    expect(wrong, report).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(cases.length);
  });

  it("answers every generated request to every documented route without a 5xx, a hang or a code outside the catalog", async ({ task }) => {
    // Through SELF, as a client reads it; the cases then go straight to the Worker (callWorker).
    const response = await call("/api/v1/openapi.json");
    expect(response.status).toBe(200);
    const document = (await response.json()) as Document;
    const resolve = resolver(document.components.schemas);
    const operations = operationsOf(document);
    expect(operations.length).toBeGreaterThan(30);

    const perClass: Record<string, number> = {};
    const offences: Offence[] = [];
    const failures: string[] = [];
    const slowest: Array<{ ms: number; line: string }> = [];
    let sent = 0;
    let hangs = 0;
    let answers5xx = 0;
    let users = 0;

    const runs = operations.map((op, index) => async () => {
      // Most runs where input reaches a handler: bodies, then query strings, then the rest.
      const numRuns = op.body ? 100 : op.template === "/jobs/{name}" || op.template === "/api/webhooks/clerk" ? 90 : op.queryParams.length > 0 ? 60 : op.template === "/api/v1/uploads/{key}" ? 40 : 24;
      const owner = lane();
      const details = await fc.check(
        fc.asyncProperty(casesOf(op, resolve), async (c) => {
          let outcome = await send(c, owner);
          sent++;
          perClass[c.cls] = (perClass[c.cls] ?? 0) + 1;
          // A case the user's own state refused (a rate limit, or an account an earlier case
          // deleted) goes again as a new user, so that it reaches what it aims at.
          if (c.auth.kind === "owner" && (outcome.code === "RATE_LIMITED" || outcome.code === "ACCOUNT_DELETED")) {
            owner.replace();
            outcome = await send(c, owner);
            sent++;
            perClass[c.cls] = (perClass[c.cls] ?? 0) + 1;
          }
          // Later cases need the session (or account) this one deleted.
          if (c.auth.kind === "owner" && c.method === "DELETE" && outcome.status < 300) owner.replace();
          slowest.push({ ms: outcome.ms, line: `${op.key} [${c.cls}] ${c.what} → ${outcome.status}` });
          slowest.sort((x, y) => y.ms - x.ms).splice(5);
          const bad = outcome.problem !== undefined || outcome.status >= 500;
          if (outcome.problem === "hang") hangs++;
          else if (outcome.status >= 500) answers5xx++;
          if (bad) offences.push({ op: op.key, cls: c.cls, what: c.what, method: c.method, status: outcome.status, code: outcome.code, problem: outcome.problem });
          return !bad;
        }),
        // A bound per operation, so that a route that hangs on everything fails readably instead of timing out.
        { seed: SEED + index, numRuns, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true },
      );
      users += owner.provisioned;
      if (details.failed) {
        const shrunk = details.counterexample ? fc.stringify(details.counterexample).slice(0, 400) : "(interrupted)";
        failures.push(`${op.key}: fc seed ${details.seed}, path "${details.counterexamplePath}", after ${details.numRuns} runs: ${shrunk}`);
      }
    });
    await pool(runs, CONCURRENCY);

    countFigures(task, { badInputs: sent, answers5xx, hangs });
    badInputsSent += sent;
    const report = [
      `seed ${SEED} (+ the operation's index); ${sent} requests as ${users} users; ${JSON.stringify(perClass)}`,
      ...failures,
      ...offences.slice(0, 40).map(describeOffence),
      "slowest:",
      ...slowest.map((t) => `  ${Math.round(t.ms)} ms ${t.line}`),
    ].join("\n");
    expect(hangs, report).toBe(0);
    expect(answers5xx, report).toBe(0);
    expect(offences, report).toEqual([]);
    expect(failures, report).toEqual([]);
    for (const cls of [...BODY_CLASSES, "junk-path", "junk-query", "junk-auth", "content-type-lie", "invalid-json", "huge-body", "bad-signature", "wrong-method"]) {
      expect(perClass[cls] ?? 0, `cases of ${cls}`).toBeGreaterThan(0);
    }
  });

  it("sent at least 1,000 bad inputs in all", () => {
    expect(badInputsSent).toBeGreaterThanOrEqual(1_000);
  });
});
