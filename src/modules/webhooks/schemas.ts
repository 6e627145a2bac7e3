import { z } from "@hono/zod-openapi";
import { storableString } from "../../lib/input";

/** Svix's message id (`msg_…`): the idempotency key of `webhook_events`, so bounded like any key. */
export const svixIdSchema = storableString().min(1).max(255);

/** A verified Clerk event: its type and its data (each type's data is parsed by its handler). */
export const clerkEventSchema = z.object({ type: storableString().min(1).max(100), data: z.unknown() });

// Ids and emails are unique keys of `users`: a btree entry holds about 2.7 KB, a Clerk id is short
// and an email at most 320 characters.
const clerkId = storableString().min(1).max(255);
const emailAddress = z.object({ id: storableString(), email_address: storableString().max(320) });

/** The part of Clerk's user object we keep; everything else in the payload is ignored. */
export const clerkUserDataSchema = z.object({
  id: clerkId,
  first_name: storableString().nullish(),
  last_name: storableString().nullish(),
  primary_email_address_id: storableString().nullish(),
  email_addresses: z.array(emailAddress).default([]),
});

export const clerkDeletedDataSchema = z.object({ id: clerkId.optional(), deleted: z.boolean().optional() });

export const webhookAckSchema = z
  .object({ received: z.literal(true), duplicate: z.boolean(), handled: z.boolean() })
  .openapi("WebhookAck");
