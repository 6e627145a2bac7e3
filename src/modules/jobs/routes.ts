import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../lib/app-env";
import { fromBase64Url } from "../../lib/encoding";
import { ok } from "../../lib/envelope";
import { AppError, CodedError } from "../../lib/errors";
import { unstorableTextIssues } from "../../lib/input";
import { createJobBatchPublisher, createJobPublisher, jobUrl, verifyJobDelivery } from "../../lib/jobs";
import { createRouter, errorResponses } from "../../lib/openapi";
import type { RoomKind } from "../../realtime/kinds";
import { createBroadcast } from "../../realtime/rooms";
import type { JobContext, JobDefinition } from "./definition";
import { beginJobRun, finishJobRun } from "./service";

/** The body QStash posts to the failure callback (see LOCAL_STACK.md). */
export const failureCallbackSchema = z.object({
  status: z.number().int(),
  retried: z.number().int().default(0),
  sourceMessageId: z.string().min(1),
  url: z.string().url(),
  sourceBody: z.string(),
});

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError("INVALID_JSON");
  }
}

/** A delivery body that does not fit its schema, or holds text Postgres cannot store: 400, not a 500. */
function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  const issues = parsed.success ? unstorableTextIssues(parsed.data) : parsed.error.issues.map(({ path, message }) => ({ path, message }));
  if (!parsed.success || issues.length > 0) throw new AppError("VALIDATION_ERROR", { details: { issues } });
  return parsed.data;
}

/** The source delivery's body a failure callback carries, base64 as QStash sends it. */
function sourceBodyOf(failure: z.infer<typeof failureCallbackSchema>): unknown {
  let text: string;
  try {
    text = new TextDecoder().decode(fromBase64Url(failure.sourceBody));
  } catch {
    throw new AppError("VALIDATION_ERROR", { message: "sourceBody is not base64", details: { issues: [{ path: ["sourceBody"], message: "Not base64" }] } });
  }
  return parseJson(text);
}

/**
 * `/jobs/*`: QStash deliveries only. The signature is checked on the raw body and this exact URL
 * before anything is parsed; each message id is recorded in job_runs so a redelivery of
 * finished work is a no-op; a failure answers non-2xx so QStash retries, and after the last
 * retry its failure callback (`/jobs/failed`) lets the job mark its work failed.
 */
export function createJobRoutes(guards: MiddlewareHandler<AppEnv>[], definitions: ReadonlyArray<JobDefinition>, rooms: ReadonlyArray<RoomKind>) {
  const jobs = new Map<string, JobDefinition>();
  for (const definition of definitions) {
    if (jobs.has(definition.name) || definition.name === "failed") throw new Error(`Two jobs are named ${definition.name}`);
    jobs.set(definition.name, definition);
  }
  const router = createRouter();
  router.use("*", ...guards);
  router.openAPIRegistry.registerPath({
    method: "post",
    path: "/{name}",
    tags: ["jobs"],
    summary: "QStash deliveries only: Upstash-Signature verified on the raw body",
    request: { params: z.object({ name: z.enum(["failed", ...jobs.keys()]) }) },
    responses: {
      200: { description: "Done, or a redelivery of finished work (`skipped: true`)" },
      ...errorResponses("JOB_SIGNATURE_INVALID", "INVALID_JSON", "VALIDATION_ERROR", "NOT_FOUND", "INTERNAL_ERROR", "DATABASE_UNAVAILABLE", "JOB_RUN_IN_PROGRESS"),
    },
  });

  router.post("/:name", async (c) => {
    const name = c.req.param("name");
    const raw = await c.req.text();
    await verifyJobDelivery(c.var.config, { url: jobUrl(c.var.config, name), signature: c.req.header("Upstash-Signature"), body: raw });
    // The idempotency key of job_runs: QStash's ids are short; a key that long fits no index.
    const messageId = c.req.header("Upstash-Message-Id");
    if (!messageId || messageId.length > 255) throw new AppError("VALIDATION_ERROR", { message: "Missing or overlong Upstash-Message-Id" });

    let definition: JobDefinition | undefined;
    let execute: (ctx: JobContext) => Promise<Record<string, unknown> | undefined>;
    if (name === "failed") {
      const failure = parseWith(failureCallbackSchema, parseJson(raw));
      const source = new URL(failure.url).pathname.replace(/^\/jobs\//, "");
      definition = jobs.get(source);
      if (!definition) throw new AppError("NOT_FOUND", { message: `No job ${source}` });
      const payload = parseWith(definition.payload, sourceBodyOf(failure));
      execute = async (ctx) => {
        await definition!.fail(ctx, payload, { status: failure.status, retried: failure.retried, sourceMessageId: failure.sourceMessageId });
        return { failed: source };
      };
    } else {
      definition = jobs.get(name);
      if (!definition) throw new AppError("NOT_FOUND", { message: `No job ${name}` });
      const payload = parseWith(definition.payload, parseJson(raw));
      execute = (ctx) => definition!.run(ctx, payload);
    }

    if ((await beginJobRun(c.var.db, messageId, name)) === "done") return ok(c, { messageId, skipped: true });
    const ctx: JobContext = {
      config: c.var.config,
      db: c.var.db,
      env: c.env,
      logger: c.var.logger.child({ job: name, messageId }),
      broadcast: createBroadcast(c.env, c.var.logger),
      rooms,
      publishJob: createJobPublisher(c.var.config),
      publishJobBatch: createJobBatchPublisher(c.var.config),
      messageId,
      retried: Number(c.req.header("Upstash-Retried") ?? 0),
    };
    try {
      const result = await execute(ctx);
      await finishJobRun(c.var.db, messageId, { ok: true });
      return ok(c, { messageId, ...result });
    } catch (error) {
      // The delivery fails either way; a job_runs row left `running` only loses its last_error.
      await finishJobRun(c.var.db, messageId, { ok: false, error: error instanceof CodedError ? error.code : "INTERNAL_ERROR" }).catch((recordError: unknown) =>
        ctx.logger.warn("job run outcome not recorded", { error: recordError }),
      );
      throw error;
    }
  });

  return router;
}
