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
        },
      },
    ],
  },
});
