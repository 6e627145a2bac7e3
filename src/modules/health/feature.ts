import type { Feature } from "../../features";
import { createHealthRoutes } from "./routes";

export const healthFeature: Feature = {
  routes: [{ base: "/api/v1/health", create: () => createHealthRoutes() }],
};
