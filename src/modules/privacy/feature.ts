import type { Feature } from "../../features";
import { purgeAccountJob, purgeUsersJob } from "./purge";

/** The privacy lifecycle (SPEC §11–12): deleted accounts purged from every store after the grace period. */
export const privacyFeature: Feature = {
  jobs: [purgeUsersJob, purgeAccountJob],
};
