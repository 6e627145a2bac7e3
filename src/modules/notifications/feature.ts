import type { Feature } from "../../features";
import { pushReceiptsJob } from "./job";

/** Expo push notifications: sending (service.ts, for other features) and the receipts job. */
export const notificationsFeature: Feature = {
  jobs: [pushReceiptsJob],
};
