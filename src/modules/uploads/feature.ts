import type { Feature } from "../../features";
import { screenshotRetentionJob } from "./retention";
import { createUploadsRoutes } from "./routes";

export const uploadsFeature: Feature = {
  routes: [{ base: "/api/v1", create: (guards) => createUploadsRoutes({ authenticated: guards.authenticated, signed: guards.services }) }],
  jobs: [screenshotRetentionJob],
};
