import { Client, Receiver } from "@upstash/qstash";
import type { z } from "zod";
import type { Broadcast } from "../realtime/rooms";
import type { Database } from "./db";
import type { AppConfig, Bindings } from "./env";
import { AppError } from "./errors";
import type { Logger } from "./logger";

/** The jobs this Worker runs; each is delivered by QStash to `POST /jobs/<name>`. */
export type JobName = "ocr" | "suggestions" | "sweep-ocr" | "sweep-suggestions";

export function jobUrl(config: Pick<AppConfig, "PUBLIC_BASE_URL">, path: JobName | "failed"): string {
  return new URL(`/jobs/${path}`, config.PUBLIC_BASE_URL).toString();
}

export function qstashClient(config: Pick<AppConfig, "QSTASH_URL" | "QSTASH_TOKEN">): Client {
  if (!config.QSTASH_TOKEN) throw new AppError("CONFIG_INVALID", { message: "Jobs are not configured (QSTASH_TOKEN)" });
  // devMode off: the SDK's dev mode would ignore QSTASH_URL and try to download a server.
  return new Client({ baseUrl: config.QSTASH_URL, token: config.QSTASH_TOKEN, devMode: false, enableTelemetry: false });
}

export type PublishJob = (name: JobName, body: Record<string, unknown>, options: { deduplicationId: string }) => Promise<{ messageId: string }>;

/**
 * Publishes a job to this Worker through QStash, always with a deduplication id (publishing the
 * same work twice is one message), retries, and the failure callback that marks the work failed.
 */
export function createJobPublisher(config: AppConfig): PublishJob {
  return async (name, body, options) => {
    const response = await qstashClient(config).publishJSON({
      url: jobUrl(config, name),
      body,
      deduplicationId: options.deduplicationId,
      retries: config.JOB_RETRIES,
      failureCallback: jobUrl(config, "failed"),
    });
    return { messageId: response.messageId };
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

/** What a job handler gets: infrastructure only; the payload comes separately, validated. */
export type JobContext = {
  config: AppConfig;
  db: Database;
  env: Bindings;
  logger: Logger;
  broadcast: Broadcast;
  publishJob: PublishJob;
  /** The QStash message id: the same on every delivery of one message. */
  messageId: string;
  /** 0 on the first delivery, then the retry number. */
  retried: number;
};

export type JobFailure = { status: number; retried: number; sourceMessageId: string };

/** One job: its payload schema, its work, and what to do when QStash gives up on it. */
export type JobDefinition<P = unknown> = {
  payload: z.ZodType<P>;
  run(ctx: JobContext, payload: P): Promise<Record<string, unknown> | undefined>;
  fail(ctx: JobContext, payload: P, failure: JobFailure): Promise<void>;
};
