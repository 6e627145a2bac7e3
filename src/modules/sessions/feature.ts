import type { Feature } from "../../features";
import { ocrJob, ocrSweepJob } from "./ocr";
import { sessionRoomKind } from "./room";
import { createSessionsRoutes } from "./routes";

export const sessionsFeature: Feature = {
  routes: [{ base: "/api/v1/sessions", create: (guards) => createSessionsRoutes(guards.authenticated) }],
  jobs: [ocrJob, ocrSweepJob],
  rooms: [sessionRoomKind],
};
