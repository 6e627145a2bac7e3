import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CLIENT_DIR, generateClient } from "./client";

describe("npm run client", () => {
  it("has written the committed client/: the API and the frames as they are now", async () => {
    const generated = await generateClient();
    expect(Object.keys(generated).sort()).toEqual(["api.ts", "frames.ts", "index.ts"]);
    for (const [name, text] of Object.entries(generated)) {
      const committed = await readFile(join(CLIENT_DIR, name), "utf8").catch(() => "");
      // A mismatch means a route or a frame changed without `npm run client` (commit its output).
      expect(committed, `client/${name} is stale: run npm run client`).toBe(text);
    }
  });

  it("types the example app code (client/example.ts) as an Expo app would, refusing what it marks as mistakes", () => {
    const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
    const result = spawnSync(process.execPath, [tsc, "--noEmit", "--pretty", "false", "-p", join(CLIENT_DIR, "tsconfig.json")], { encoding: "utf8" });
    expect(result.stdout + result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});
