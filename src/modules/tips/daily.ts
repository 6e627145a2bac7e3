import { z } from "zod";
import { calendarDateSchema } from "../../lib/input";
import { type JobContext, type JobDefinition, jobInstant, jobInstantSchema } from "../jobs/definition";
import { sendPush } from "../notifications/service";
import { getUser, liveTokensOf, usersDueForTip } from "../users/service";
import { aiEngineFor } from "../../ai/engine";
import { claimTipSend, localizeTip, tipFor } from "./service";

/** Users per fan-out delivery: one batch publish, then the next page is a delivery of its own. */
const FAN_OUT_PAGE = 100;

/**
 * One user's tip for one local day: the tip is the day's (the one `GET /tips/today` showed, or a
 * fresh choice recorded for the day), and the push goes out only from the delivery that marks
 * it sent, so a redelivery never sends a second one. The mark comes before the translation, so
 * a duplicate delivery (even one running at the same time) stops before any model call too.
 */
export const tipDeliveryJob: JobDefinition<{ userId: string; localDate: string }> = {
  name: "tip-delivery",
  payload: z.object({ userId: z.string().min(1).max(64), localDate: calendarDateSchema }).strict(),
  async run(ctx, { userId, localDate }) {
    const user = await getUser(ctx.db, userId);
    const chosen = await tipFor(ctx.db, userId, localDate);
    if (!chosen) return { skipped: "no tip left" };
    if (!(await claimTipSend(ctx.db, userId, localDate))) return { skipped: "already sent" };
    const tokens = await liveTokensOf(ctx.db, userId);
    if (tokens.length === 0) return { tipId: chosen.id, pushed: 0 };
    const tip = await localizeTip({ db: ctx.db, engine: aiEngineFor(ctx.config, ctx.db), logger: ctx.logger }, user, chosen);
    await sendPush(pushDeps(ctx), tokens.map((token) => ({ pushTokenId: token.id, to: token.token, title: "Today's tip", body: tip.text, data: { type: "tip", tipId: tip.id, localDate } })));
    return { tipId: tip.id, pushed: tokens.length };
  },
  // The day's tip is still in the app (GET /tips/today); a lost push is not worth more.
  fail: async (ctx) => ctx.logger.warn("tip delivery gave up"),
};

function pushDeps(ctx: JobContext) {
  return { db: ctx.db, config: ctx.config, logger: ctx.logger };
}

/**
 * The hourly fan-out: every user whose local clock just reached their tip hour gets a delivery,
 * published in batches of at most 100; a full page hands the rest to a delivery of its own, so
 * no single run does unbounded work. `at` runs it as if it were that instant (jobs:run).
 */
export const dailyTipsJob: JobDefinition<{ at?: string; afterId?: string }> = {
  name: "daily-tips",
  payload: z.object({ at: jobInstantSchema, afterId: z.string().min(1).max(64).optional() }).strict(),
  schedule: { id: "charisma-daily-tips", cron: "0 * * * *" },
  async run(ctx, { at, afterId }) {
    const instant = jobInstant(at).toISOString();
    const due = await usersDueForTip(ctx.db, new Date(instant), { limit: FAN_OUT_PAGE, afterId });
    await ctx.publishJobBatch(
      tipDeliveryJob,
      due.map((user) => ({ payload: { userId: user.id, localDate: user.localDate }, deduplicationId: `tip-${user.id}-${user.localDate}` })),
    );
    const last = due.at(-1);
    if (due.length === FAN_OUT_PAGE && last) {
      await ctx.publishJob(dailyTipsJob, { at: instant, afterId: last.id }, { deduplicationId: `daily-tips-${instant}-${last.id}` });
    }
    return { fannedOut: due.length, more: due.length === FAN_OUT_PAGE };
  },
  fail: async (ctx) => ctx.logger.warn("daily tips fan-out gave up"),
};
