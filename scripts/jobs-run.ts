// `npm run jobs:run -- <job> [json]`: publishes a registered job through QStash now, with the
// JSON payload given (default `{}`), validated by the job's own schema first. For operators, and
// to see a scheduled job's effect in dev without waiting for its schedule. Reads PUBLIC_BASE_URL,
// QSTASH_TOKEN (and QSTASH_URL, JOB_RETRIES); without QSTASH_TOKEN it targets the local stack of
// `npm run dev` (LOCAL_WORKER_PORT, LOCAL_QSTASH_PORT).
import { LOCAL_QSTASH_CREDENTIALS } from "../local/dev-vars.ts";
import { features, jobsOf } from "../src/features";
import { configFields } from "../src/lib/env";
import { createJobPublisher } from "../src/lib/jobs";

const [name, json = "{}"] = process.argv.slice(2);
const jobs = jobsOf(features);
const job = jobs.find((candidate) => candidate.name === name);
if (!job) {
  console.error(`usage: npm run jobs:run -- <job> [json]; jobs: ${jobs.map((candidate) => candidate.name).join(", ")}`);
  process.exit(2);
}

let payload: unknown;
try {
  payload = JSON.parse(json);
} catch {
  console.error("jobs:run: the payload is not JSON");
  process.exit(2);
}
const parsed = job.payload.safeParse(payload);
if (!parsed.success) {
  console.error(`jobs:run: ${name} does not take that payload: ${parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"} ${issue.message}`).join("; ")}`);
  process.exit(2);
}

const fromEnv = Object.fromEntries(Object.entries(process.env).filter(([, value]) => value !== ""));
const local = fromEnv.QSTASH_TOKEN === undefined;
const config = configFields.pick({ PUBLIC_BASE_URL: true, QSTASH_URL: true, QSTASH_TOKEN: true, JOB_RETRIES: true }).parse(
  local
    ? {
        ...fromEnv,
        PUBLIC_BASE_URL: `http://127.0.0.1:${fromEnv.LOCAL_WORKER_PORT ?? 8787}`,
        QSTASH_URL: `http://127.0.0.1:${fromEnv.LOCAL_QSTASH_PORT ?? 8070}`,
        QSTASH_TOKEN: LOCAL_QSTASH_CREDENTIALS.token,
      }
    : fromEnv,
);
// A fresh deduplication id: an operator's run is never mistaken for a scheduled one.
const { messageId } = await createJobPublisher(config)(job, parsed.data, { deduplicationId: `manual-${name}-${crypto.randomUUID()}` });
console.log(`jobs:run: ${name} published to ${local ? "the local stack" : config.PUBLIC_BASE_URL} as ${messageId}`);
