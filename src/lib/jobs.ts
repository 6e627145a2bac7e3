import { Client, Receiver } from "@upstash/qstash";
import type { z } from "zod";
import type { AppConfig } from "./env";
import { AppError } from "./errors";

/**
 * Where QStash delivers a job: `POST /jobs/<name>`. The names belong to the features that
 * declare the jobs (see src/features.ts); this file knows none of them.
 */
export function jobUrl(config: Pick<AppConfig, "PUBLIC_BASE_URL">, name: string): string {
  return new URL(`/jobs/${name}`, config.PUBLIC_BASE_URL).toString();
}

export function qstashClient(config: Pick<AppConfig, "QSTASH_URL" | "QSTASH_TOKEN">): Client {
  if (!config.QSTASH_TOKEN) throw new AppError("CONFIG_INVALID", { message: "Jobs are not configured (QSTASH_TOKEN)" });
  // devMode off: the SDK's dev mode would ignore QSTASH_URL and try to download a server.
  return new Client({ baseUrl: config.QSTASH_URL, token: config.QSTASH_TOKEN, devMode: false, enableTelemetry: false });
}

/** What a publisher needs of a job: its name, and its payload's type (checked where it is published). */
export type JobAddress<P> = { name: string; payload: z.ZodType<P> };

export type PublishJob = <P extends Record<string, unknown>>(
  job: JobAddress<P>,
  payload: P,
  options: { deduplicationId: string },
) => Promise<{ messageId: string }>;

/**
 * Publishes a job to this Worker through QStash, always with a deduplication id (publishing the
 * same work twice is one message), retries, and the failure callback that marks the work failed.
 */
export function createJobPublisher(config: Pick<AppConfig, "QSTASH_URL" | "QSTASH_TOKEN" | "PUBLIC_BASE_URL" | "JOB_RETRIES">): PublishJob {
  return async (job, payload, options) => {
    const response = await qstashClient(config).publishJSON({
      url: jobUrl(config, job.name),
      body: payload,
      deduplicationId: options.deduplicationId,
      retries: config.JOB_RETRIES,
      failureCallback: jobUrl(config, "failed"),
    });
    return { messageId: response.messageId };
  };
}

export type PublishJobBatch = <P extends Record<string, unknown>>(
  job: JobAddress<P>,
  items: ReadonlyArray<{ payload: P; deduplicationId: string }>,
) => Promise<Array<{ messageId: string }>>;

/** QStash takes at most this many messages in one batch request. */
const BATCH_SIZE = 100;

/**
 * Publishes many deliveries of one job in batch requests of at most 100 (a fan-out), each with
 * its own deduplication id, retries and failure callback, as `createJobPublisher` does for one.
 */
export function createJobBatchPublisher(config: Pick<AppConfig, "QSTASH_URL" | "QSTASH_TOKEN" | "PUBLIC_BASE_URL" | "JOB_RETRIES">): PublishJobBatch {
  return async (job, items) => {
    const client = qstashClient(config);
    const published: Array<{ messageId: string }> = [];
    for (let start = 0; start < items.length; start += BATCH_SIZE) {
      const responses = await client.batchJSON(
        items.slice(start, start + BATCH_SIZE).map((item) => ({
          url: jobUrl(config, job.name),
          body: item.payload,
          deduplicationId: item.deduplicationId,
          retries: config.JOB_RETRIES,
          failureCallback: jobUrl(config, "failed"),
        })),
      );
      for (const response of responses) published.push({ messageId: (response as { messageId: string }).messageId });
    }
    return published;
  };
}

/**
 * Verifies a delivery's `Upstash-Signature` against the raw body and this exact URL, with the
 * current and then the next signing key. Throws JOB_SIGNATURE_INVALID; never parses the body.
 */
export async function verifyJobDelivery(config: AppConfig, request: { url: string; signature: string | undefined; body: string }) {
  if (!config.QSTASH_CURRENT_SIGNING_KEY || !config.QSTASH_NEXT_SIGNING_KEY) {
    throw new AppError("CONFIG_INVALID", { message: "Jobs are not configured (QSTASH_*_SIGNING_KEY)" });
  }
  if (!request.signature) throw new AppError("JOB_SIGNATURE_INVALID", { message: "Missing Upstash-Signature" });
  const receiver = new Receiver({
    currentSigningKey: config.QSTASH_CURRENT_SIGNING_KEY,
    nextSigningKey: config.QSTASH_NEXT_SIGNING_KEY,
    devMode: false,
  });
  try {
    await receiver.verify({ signature: request.signature, body: request.body, url: request.url });
  } catch {
    throw new AppError("JOB_SIGNATURE_INVALID");
  }
}
