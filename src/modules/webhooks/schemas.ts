import { z } from "@hono/zod-openapi";

const emailAddress = z.object({ id: z.string(), email_address: z.string() });

/** The part of Clerk's user object we keep; everything else in the payload is ignored. */
export const clerkUserDataSchema = z.object({
  id: z.string().min(1),
  first_name: z.string().nullish(),
  last_name: z.string().nullish(),
  primary_email_address_id: z.string().nullish(),
  email_addresses: z.array(emailAddress).default([]),
});

export const clerkDeletedDataSchema = z.object({ id: z.string().min(1).optional(), deleted: z.boolean().optional() });

export const webhookAckSchema = z
  .object({ received: z.literal(true), duplicate: z.boolean(), handled: z.boolean() })
  .openapi("WebhookAck");
