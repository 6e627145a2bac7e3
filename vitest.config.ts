import { defineConfig } from "vitest/config";
import { workerProject } from "./test/worker-project.ts";

export default defineConfig({
  test: {
    reporters: ["default", "./test/summary-reporter.ts"],
    projects: [
      // The Worker's tests run inside workerd with its real bindings.
      workerProject({ name: "worker", include: ["src/**/*.test.ts"], test: { sequence: { groupOrder: 1 } } }),
      {
        // The local stand-ins and scripts are Node programs: their own behaviour is tested in Node,
        // as is whatever needs Node-only tooling (the OpenAPI validator).
        test: {
          name: "local",
          include: ["local/**/*.test.ts", "scripts/**/*.test.ts", "test/**/*.node.test.ts"],
          environment: "node",
          testTimeout: 30_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Tests against a real `wrangler dev` (local/dev-stack.ts), for what only it shows. Each
        // file starts its own stack (stand-ins + wrangler + workerd) and stops it again; the
        // stack's start has its own generous deadline (test/dev/stack.ts).
        test: {
          name: "dev",
          include: ["test/dev/**/*.dev.test.ts"],
          environment: "node",
          // One stack at a time, and none while the other projects run: projects run in
          // groupOrder, one group after another, so wrangler and workerd never compete with
          // the pool's workerd or with each other for the 2 cores — deadline checks stay honest.
          fileParallelism: false,
          sequence: { groupOrder: 2 },
          testTimeout: 60_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
