import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import type { TestProjectInlineConfiguration } from "vitest/config";

/**
 * A test project that runs inside workerd with the Worker's real bindings. Its global setup starts
 * the local stand-ins on free ports and provides their addresses as Worker vars; `vars` go over them.
 */
export function workerProject(options: {
  name: string;
  include: string[];
  vars?: Record<string, string>;
  test?: TestProjectInlineConfiguration["test"];
}): TestProjectInlineConfiguration {
  return {
    plugins: [
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: { bindings: { ...inject("workerVars"), ...options.vars } },
      })),
    ],
    test: {
      name: options.name,
      include: options.include,
      globalSetup: ["./test/global-setup.ts"],
      // One Postgres and one Redis serve every file; files run one after another so that
      // resetting tables in one never pulls rows from under another.
      fileParallelism: false,
      testTimeout: 20_000,
      hookTimeout: 60_000,
      ...options.test,
    },
  };
}
