import type { z } from "@hono/zod-openapi";
import { webhookEvents } from "../../db/schema";
import type { Database } from "../../lib/db";
import { clerkDeletionStatement, forgetIdentity, upsertClerkProfileStatement } from "../users/service";
import { clerkDeletedDataSchema, clerkUserDataSchema } from "./schemas";

export type WebhookOutcome = {
  duplicate: boolean;
  handled: boolean;
  /** The internal id of the account a `user.deleted` just deleted (its sockets are closed next). */
  deletedUserId?: string;
};

function primaryEmail(data: z.infer<typeof clerkUserDataSchema>): string | null {
  const primary = data.email_addresses.find((address) => address.id === data.primary_email_address_id);
  return (primary ?? data.email_addresses[0])?.email_address ?? null;
}

function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const err = (error as { cause?: unknown }).cause ?? error;
  const { code, constraint: name } = err as { code?: string; constraint?: string };
  return code === "23505" && (constraint === undefined || name === constraint);
}

/**
 * Applies one verified Clerk event. The event's svix id is recorded in the same batch
 * (one transaction) as its effect: a replay hits the primary key, rolls back, and is a no-op.
 */
export async function applyClerkEvent(
  db: Database,
  event: { svixId: string; type: string; data: unknown },
): Promise<WebhookOutcome> {
  const record = db.insert(webhookEvents).values({ svixId: event.svixId, type: event.type });

  const run = async (withEmail: boolean): Promise<WebhookOutcome> => {
    if (event.type === "user.created" || event.type === "user.updated") {
      const data = clerkUserDataSchema.parse(event.data);
      const profile = {
        firstName: data.first_name ?? null,
        lastName: data.last_name ?? null,
        ...(withEmail ? { email: primaryEmail(data) } : {}),
      };
      await db.batch([record, upsertClerkProfileStatement(db, data.id, profile)]);
      return { duplicate: false, handled: true };
    }
    if (event.type === "user.deleted") {
      const data = clerkDeletedDataSchema.parse(event.data);
      if (!data.id) {
        await record;
        return { duplicate: false, handled: false };
      }
      // Clerk's deletion is final, and a user never seen gets a deleted row (see the statement).
      const [, [deleted]] = await db.batch([record, clerkDeletionStatement(db, data.id)]);
      forgetIdentity(data.id);
      return { duplicate: false, handled: true, deletedUserId: deleted?.id };
    }
    // Recorded anyway, so a replay of an ignored event is recognised too.
    await record;
    return { duplicate: false, handled: false };
  };

  try {
    return await run(true);
  } catch (error) {
    if (isUniqueViolation(error, "webhook_events_pkey")) return { duplicate: true, handled: false };
    // Another account already holds this email: keep the profile, drop the email.
    if (isUniqueViolation(error, "users_email_unique")) {
      try {
        return await run(false);
      } catch (retryError) {
        if (isUniqueViolation(retryError, "webhook_events_pkey")) return { duplicate: true, handled: false };
        throw retryError;
      }
    }
    throw error;
  }
}
