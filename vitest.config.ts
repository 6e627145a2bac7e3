import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", "./test/summary-reporter.ts"],
    projects: [
      {
        // The Worker's tests run inside workerd with its real bindings. The global setup starts
        // the local stand-ins on free ports and provides their addresses as Worker vars.
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: inject("workerVars") },
          })),
        ],
        test: {
          name: "worker",
          include: ["src/**/*.test.ts"],
          globalSetup: ["./test/global-setup.ts"],
          // One Postgres and one Redis serve every file; files run one after another so that
          // resetting tables in one never pulls rows from under another.
          fileParallelism: false,
          testTimeout: 20_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 1 },
        },
      },
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
