import type { Feature } from "../../features";
import { createTipRoutes } from "./routes";

/** Daily tips (SPEC §3–4): today's tip for the caller. */
export const tipsFeature: Feature = {
  routes: [{ base: "/api/v1/tips", create: (guards) => createTipRoutes({ authenticated: guards.authenticated }) }],
};
