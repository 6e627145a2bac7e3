import type { Feature } from "../../features";
import { dailyTipsJob, tipDeliveryJob } from "./daily";
import { createTipRoutes } from "./routes";

/** Daily tips (SPEC §3–4, §7): today's tip for the caller, and the hourly push of it. */
export const tipsFeature: Feature = {
  routes: [{ base: "/api/v1/tips", create: (guards) => createTipRoutes({ authenticated: guards.authenticated }) }],
  jobs: [dailyTipsJob, tipDeliveryJob],
};
