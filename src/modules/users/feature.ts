import type { Feature } from "../../features";
import { createUsersRoutes } from "./routes";

export const usersFeature: Feature = {
  routes: [{ base: "/api/v1/users", create: (guards) => createUsersRoutes(guards.authenticated) }],
};
