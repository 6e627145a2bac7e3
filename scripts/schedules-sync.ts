// `npm run schedules:sync`: creates or updates the QStash schedules the features' jobs declare
// (src/features.ts) and removes this Worker's schedules no longer listed. Reads PUBLIC_BASE_URL and QSTASH_TOKEN
// (and QSTASH_URL, JOB_RETRIES if set) from the environment. Safe to run again.
import { configFields } from "../src/lib/env";
import { features, jobsOf } from "../src/features";
import { schedulesOf, syncSchedules } from "../src/modules/jobs/schedules";

const parsed = configFields
  .pick({ PUBLIC_BASE_URL: true, QSTASH_URL: true, QSTASH_TOKEN: true, JOB_RETRIES: true })
  .required({ QSTASH_TOKEN: true })
  .safeParse(Object.fromEntries(Object.entries(process.env).filter(([, value]) => value !== "")));
if (!parsed.success) {
  const names = [...new Set(parsed.error.issues.map((issue) => String(issue.path[0])))].sort();
  console.error(`schedules:sync: set ${names.join(", ")} (PUBLIC_BASE_URL is the Worker's public https origin)`);
  process.exit(1);
}
const result = await syncSchedules(parsed.data, schedulesOf(jobsOf(features)));
console.log(`schedules:sync: ${result.synced.join(", ")} in place${result.removed.length > 0 ? `; removed ${result.removed.join(", ")}` : ""}`);
