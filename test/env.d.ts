import type { Bindings } from "../src/lib/env";

declare global {
  namespace Cloudflare {
    interface Env extends Bindings {
      /** Test-only: the global setup's control endpoint (stop/start Redis, lose database requests). */
      TEST_CONTROL_URL: string;
      TEST_CONTROL_TOKEN: string;
      /** Test-only: the Neon HTTP endpoint behind a proxy that loses the requests it is told to. */
      TEST_DROPPING_NEON_ENDPOINT: string;
      /** Test-only: the private half of CLERK_JWT_KEY, to mint session tokens. */
      TEST_CLERK_PRIVATE_JWK: string;
      /** Test-only: the local AI upstream (its /__control endpoints inject faults, list requests). */
      TEST_AI_UPSTREAM_URL: string;
      /** Test-only: the local QStash (pull mode; see test/jobs.ts). */
      TEST_QSTASH_URL: string;
      /** Test-only: the local Expo push service's origin (/__messages, /__reset, /__faults). */
      TEST_EXPO_URL: string;
    }
  }
}
