import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Tests run inside workerd with the Worker's real bindings. The global setup starts the
// local stand-ins on free ports and provides their addresses, which become Worker vars here.
export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: { bindings: inject("workerVars") },
    })),
  ],
  test: {
    globalSetup: ["./test/global-setup.ts"],
    reporters: ["default", "./test/summary-reporter.ts"],
    // One Postgres and one Redis serve every file; files run one after another so that
    // resetting tables in one never pulls rows from under another.
    fileParallelism: false,
    testTimeout: 20_000,
    hookTimeout: 60_000,
  },
});
