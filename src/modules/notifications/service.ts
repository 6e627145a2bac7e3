import { and, asc, inArray, isNull, lte } from "drizzle-orm";
import { pushTickets } from "../../db/schema";
import type { Database } from "../../lib/db";
import { disablePushTokens } from "../users/service";
import { chunks, type ExpoDeps, type ExpoResult, expoRequest, pushErrorCode, RECEIPT_BATCH_SIZE, SEND_BATCH_SIZE } from "./expo";

export type PushDeps = ExpoDeps & { db: Database };

/** One notification to one device: the token's row id (for pruning) and its Expo token. */
export type PushMessage = {
  pushTokenId: string;
  to: string;
  title?: string;
  body: string;
  data?: Record<string, unknown>;
};

/** Receipts are ready about 15 minutes after a send (Expo's advice) and kept for a day. */
export const RECEIPT_DELAY_MS = 15 * 60_000;
const RECEIPT_EXPIRY_MS = 24 * 60 * 60_000;
/** Tickets one receipts run reads at most; the next scheduled run takes the rest. */
const RECEIPTS_PER_RUN = 10_000;

/**
 * Logs an Expo error with its catalog code (never the token or Expo's message, which quotes it)
 * and says whether the token is dead. Wrong credentials concern every notification: an error.
 */
function readResult(deps: PushDeps, result: ExpoResult, pushTokenId: string, on: "ticket" | "receipt"): { dead: boolean } {
  if (result.status === "ok") return { dead: false };
  const expoError = result.details?.error;
  const code = pushErrorCode(expoError);
  const fields = { code, expoError, on, pushTokenId };
  if (code === "PUSH_INVALID_CREDENTIALS") deps.logger.error("push refused", fields);
  else deps.logger.warn("push refused", fields);
  return { dead: code === "PUSH_DEVICE_NOT_REGISTERED" };
}

/**
 * Sends notifications through Expo, at most 100 per request. Each ticket is read at once: a
 * device Expo no longer knows has its token disabled; an accepted one is kept for the receipts
 * job. A batch Expo never accepts (after retries) throws PushError PUSH_UNAVAILABLE, after the
 * batches before it were recorded.
 */
export async function sendPush(deps: PushDeps, messages: readonly PushMessage[]) {
  let accepted = 0;
  let refused = 0;
  let disabled = 0;
  for (const batch of chunks(messages, SEND_BATCH_SIZE)) {
    const data = await expoRequest(
      deps,
      "send",
      batch.map(({ to, title, body, data }) => ({ to, title, body, data, sound: "default" })),
    );
    const tickets = Array.isArray(data) ? (data as ExpoResult[]) : [];
    if (tickets.length !== batch.length) deps.logger.warn("expo answered a different number of tickets", { sent: batch.length, tickets: tickets.length });
    const stored: Array<{ id: string; pushTokenId: string }> = [];
    const dead: string[] = [];
    batch.forEach((message, index) => {
      const ticket = tickets[index];
      if (!ticket) return;
      if (ticket.status === "ok" && ticket.id) {
        stored.push({ id: ticket.id, pushTokenId: message.pushTokenId });
        return;
      }
      refused++;
      if (readResult(deps, ticket, message.pushTokenId, "ticket").dead) dead.push(message.pushTokenId);
    });
    if (stored.length > 0) await deps.db.insert(pushTickets).values(stored).onConflictDoNothing();
    await disablePushTokens(deps.db, dead);
    accepted += stored.length;
    disabled += dead.length;
  }
  return { accepted, refused, disabled };
}

/**
 * Reads the receipts of tickets at least 15 minutes old, 1,000 ids per request, with the same
 * pruning as tickets. A ticket is checked once it has a receipt, or once Expo can no longer
 * have one (a day on). Safe to run again: checked tickets are not asked for twice, and a token
 * disabled twice keeps its first date.
 */
export async function checkReceipts(deps: PushDeps, now = new Date()) {
  const due = await deps.db
    .select({ id: pushTickets.id, pushTokenId: pushTickets.pushTokenId, createdAt: pushTickets.createdAt })
    .from(pushTickets)
    .where(and(isNull(pushTickets.checkedAt), lte(pushTickets.createdAt, new Date(now.getTime() - RECEIPT_DELAY_MS))))
    .orderBy(asc(pushTickets.createdAt))
    .limit(RECEIPTS_PER_RUN);
  let checked = 0;
  let disabled = 0;
  for (const batch of chunks(due, RECEIPT_BATCH_SIZE)) {
    const data = await expoRequest(deps, "getReceipts", { ids: batch.map((ticket) => ticket.id) });
    const receipts = (typeof data === "object" && data !== null ? data : {}) as Record<string, ExpoResult | undefined>;
    const done: string[] = [];
    const dead: string[] = [];
    for (const ticket of batch) {
      const receipt = receipts[ticket.id];
      if (receipt) {
        if (readResult(deps, receipt, ticket.pushTokenId, "receipt").dead) dead.push(ticket.pushTokenId);
        done.push(ticket.id);
      } else if (now.getTime() - ticket.createdAt.getTime() > RECEIPT_EXPIRY_MS) {
        done.push(ticket.id);
      }
    }
    await disablePushTokens(deps.db, dead);
    if (done.length > 0) {
      await deps.db.update(pushTickets).set({ checkedAt: now }).where(and(inArray(pushTickets.id, done), isNull(pushTickets.checkedAt)));
    }
    checked += done.length;
    disabled += dead.length;
  }
  return { due: due.length, checked, disabled };
}
