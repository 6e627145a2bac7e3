import type { Feature } from "../../features";
import { suggestionJob, suggestionSweepJob } from "./job";
import { createSuggestionsRoutes } from "./routes";

export const suggestionsFeature: Feature = {
  routes: [{ base: "/api/v1", create: (guards) => createSuggestionsRoutes({ authenticated: guards.authenticated, ai: guards.ai }) }],
  jobs: [suggestionJob, suggestionSweepJob],
};
