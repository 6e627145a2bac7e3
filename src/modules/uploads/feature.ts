import type { Feature } from "../../features";
import { createUploadsRoutes } from "./routes";

export const uploadsFeature: Feature = {
  routes: [{ base: "/api/v1", create: (guards) => createUploadsRoutes({ authenticated: guards.authenticated, signed: guards.services }) }],
};
