import { z } from "zod";
import type { JobDefinition } from "../jobs/definition";
import { checkReceipts } from "./service";

/** Every 15 minutes: Expo's receipts for the tickets sent at least 15 minutes ago, pruning dead tokens. */
export const pushReceiptsJob: JobDefinition<Record<string, never>> = {
  name: "push-receipts",
  payload: z.object({}).strict(),
  schedule: { id: "charisma-push-receipts", cron: "*/15 * * * *" },
  run: (ctx) => checkReceipts({ config: ctx.config, db: ctx.db, logger: ctx.logger }),
  // Unchecked tickets stay unchecked; the next scheduled run reads them.
  fail: async (ctx) => ctx.logger.warn("push receipts run gave up"),
};
