import type { Feature } from "../../features";
import { createWebhookRoutes } from "./routes";

export const webhooksFeature: Feature = {
  routes: [{ base: "/api/webhooks", create: (guards) => createWebhookRoutes([...guards.services, ...guards.ip]) }],
};
