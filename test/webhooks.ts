import { env } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { call } from "./helpers";

/** A Clerk user object as Clerk's `user.created` / `user.updated` events carry it. */
export function clerkUser(id: string, overrides: Record<string, unknown> = {}) {
  return {
    id,
    object: "user",
    first_name: "Robin",
    last_name: "Lee",
    primary_email_address_id: "idn_2",
    email_addresses: [
      { id: "idn_1", email_address: "old@example.com" },
      { id: "idn_2", email_address: "robin@example.com" },
    ],
    ...overrides,
  };
}

/** A raw body signed like Svix does for Clerk: the same standard-webhooks scheme, the Worker's secret. */
export function signedWebhookBody(body: string, options: { svixId?: string; timestamp?: Date; secret?: string } = {}) {
  const svixId = options.svixId ?? `msg_${crypto.randomUUID()}`;
  const timestamp = options.timestamp ?? new Date();
  const signature = new Webhook(options.secret ?? env.CLERK_WEBHOOK_SECRET!).sign(svixId, timestamp, body);
  return {
    svixId,
    init: {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "svix-id": svixId,
        "svix-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
        "svix-signature": signature,
      },
      body,
    } satisfies RequestInit,
  };
}

/** A Clerk webhook event, signed (see signedWebhookBody). */
export function signedWebhook(payload: unknown, options: Parameters<typeof signedWebhookBody>[1] = {}) {
  return signedWebhookBody(JSON.stringify(payload), options);
}

/** Delivers a webhook to the Clerk endpoint. */
export const postClerkWebhook = (init: RequestInit) => call("/api/webhooks/clerk", init);
