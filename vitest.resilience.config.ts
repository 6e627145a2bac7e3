import { defineConfig } from "vitest/config";
import { workerProject } from "./test/worker-project.ts";

/**
 * `npm run test:resilience`: tries to break the promises of SPEC §5–7 and §11 (no event lost or
 * duplicated, no duplicate row, a catalog error and a recovery when a dependency dies, no 500 on
 * any input) and prints what held (test/resilience/reporter.ts).
 */
export default defineConfig({
  test: {
    reporters: ["./test/resilience/reporter.ts", "./test/summary-reporter.ts"],
    projects: [
      // Inside workerd, as the main suite's Worker tests; every log line is written, to be scanned.
      workerProject({
        name: "resilience-worker",
        include: ["test/resilience/**/*.worker.test.ts"],
        vars: { LOG_LEVEL: "debug" },
        test: { testTimeout: 120_000, sequence: { groupOrder: 0 } },
      }),
      {
        // Against a real `wrangler dev` whose stand-ins are stopped and started under live work.
        test: {
          name: "resilience-dev",
          include: ["test/resilience/dev/**/*.dev.test.ts"],
          environment: "node",
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 240_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
