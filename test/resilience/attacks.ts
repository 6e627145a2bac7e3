import { env } from "cloudflare:test";
import { expect } from "vitest";
import { openerRoom } from "../../src/modules/openers/room";
import { sessionRoom } from "../../src/modules/sessions/room";
import type { RoomAddress } from "../../src/realtime/protocol";
import { roomStub } from "../../src/realtime/rooms";
import { callWorker } from "../helpers";
import type { Owned } from "../routes";
import { randomIp } from "../ws";
import { countFigures, type Figures } from "./figures";

/**
 * A request handed to the Worker's default export in-process (see `callWorker`), its waitUntil
 * work settled before the attack counts what changed. Uploads, whose bytes must cross the
 * runtime's HTTP layer, and sockets still go through SELF.
 */
export const dispatch = (path: string, init: RequestInit = {}): Promise<Response> => callWorker(path, init, { settle: true });

/** What an attack got: an HTTP answer (status and error code) or a socket's end. */
export type Answer = { status: number; code?: string };

/** The room a socket path's `{id}` names, by the kind of resource it is (see test/routes.ts). */
export function roomNamed(kind: keyof Owned, id: string): RoomAddress {
  if (kind === "session") return sessionRoom(id);
  if (kind === "openerGeneration") return openerRoom(id);
  throw new Error(`no room kind for a ${kind} id; add it to roomNamed in test/resilience/attacks.ts`);
}

/** Publishes one event into each of a user's rooms, so that a socket let in would have something to replay. */
export async function fillRooms(owned: Pick<Owned, "session" | "openerGeneration">): Promise<void> {
  await roomStub(env, roomNamed("session", owned.session)).publish({ type: "status", data: { status: "ready" } });
  await roomStub(env, roomNamed("openerGeneration", owned.openerGeneration)).publish({ type: "status", data: { status: "ready" } });
}

/** A room socket's upgrade, dispatched in-process (see `dispatch`), from an address of its own. */
export function dispatchUpgrade(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return dispatch(path, { headers: { Upgrade: "websocket", "CF-Connecting-IP": randomIp(), ...headers } });
}

/** What the attack files share: an HTTP answer read once, a pool, a log that fails the test at the end. */
export async function answerOf(response: Response): Promise<Answer & { body: unknown }> {
  // An upgrade that got through: closed at once, so it holds nothing open for the attacks after it.
  if (response.webSocket) {
    response.webSocket.accept();
    response.webSocket.close(1000, "attack over");
  }
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a 101 has no body): kept as text.
  }
  const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
  return { status: response.status, code: typeof code === "string" ? code : undefined, body };
}

/** Runs `work` over `items`, at most `limit` at a time, answers in the items' order. */
export async function inPool<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await work(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * One test's attacks. Each attempt is recorded with whether it was refused as the contract says;
 * one that got through (a 2xx or 101 where a refusal is required, data of another user, a side
 * effect) is an accepted attack, one refused otherwise than promised (another status or code) a
 * wrong refusal. `settle` counts them into the figures and fails the test, listing the cases.
 */
export function attackLog() {
  const tried: string[] = [];
  const accepted: string[] = [];
  const wrong: string[] = [];
  return {
    get count() {
      return tried.length;
    },
    /** An HTTP attempt that must be refused with `expected` (an error code, or a status and a code). */
    refused(what: string, answer: Answer, expected: Answer) {
      tried.push(what);
      const line = `${what}: ${answer.status} ${answer.code ?? ""}`.trim();
      if (answer.status < 400) accepted.push(line);
      else if (answer.status !== expected.status || answer.code !== expected.code) wrong.push(`${line} (promised ${expected.status} ${expected.code ?? ""})`.trim());
    },
    /** An attempt whose outcome the caller judged: `gotThrough` describes what got through, if anything. */
    judged(what: string, gotThrough: string | undefined) {
      tried.push(what);
      if (gotThrough) accepted.push(`${what}: ${gotThrough}`);
    },
    /** A side effect found after the attempts (rows, objects, storage that changed). */
    effect(what: string, description: string | undefined) {
      if (description) accepted.push(`${what}: ${description}`);
    },
    settle(task: { meta: { figures?: Figures } }) {
      countFigures(task, { attacks: tried.length, attacksAccepted: accepted.length });
      expect(accepted, `accepted attacks:\n${accepted.join("\n")}`).toEqual([]);
      expect(wrong, `refused otherwise than promised:\n${wrong.join("\n")}`).toEqual([]);
      expect(tried.length).toBeGreaterThan(0);
    },
  };
}
