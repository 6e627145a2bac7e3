import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { composition, packageOf } from "./bundle-composition.ts";

describe("packageOf", () => {
  it("names npm packages, scoped or not, and this project's folders", () => {
    expect(packageOf("node_modules/zod/v4/core/schemas.js")).toBe("zod");
    expect(packageOf("node_modules/@upstash/redis/chunk.mjs")).toBe("@upstash/redis");
    expect(packageOf("node_modules/a/node_modules/b/index.js")).toBe("b");
    expect(packageOf("src/modules/sessions/routes.ts")).toBe("src/modules");
    expect(packageOf("src/app.ts")).toBe("src/app.ts");
  });
});

describe("composition", () => {
  // Output line 1: a's 8 bytes, then b's 3; line 2: c's 18, whose own source map names its
  // sources from outside the package (as drizzle-orm's do).
  const code = "alpha=1;be;\ngamma(x)+delta(y);";
  const meta = {
    outputs: {
      "out/index.js": {
        inputs: {
          "node_modules/a/index.js": { bytesInOutput: 8 },
          "node_modules/@s/b/index.js": { bytesInOutput: 3 },
          "node_modules/c/pg/x.js": { bytesInOutput: 18 },
        },
      },
    },
  };
  const map = {
    sources: ["../node_modules/a/index.js", "../node_modules/@s/b/index.js", "../node_modules/src/pg/x.ts"],
    // [column, source, line, column] per segment, as base64 VLQ deltas.
    mappings: "AAAA,QCAA;ACAA",
  };

  it("counts esbuild's bytes per package and gzips the text the source map gives each", () => {
    const gzip = (text: string) => gzipSync(text, { level: 9 }).length;
    expect(composition({ root: "/p", outputFile: "/p/out/index.js", code, map, meta })).toEqual([
      { name: "c", raw: 18, gzip: gzip("gamma(x)+delta(y);") },
      { name: "a", raw: 8, gzip: gzip("alpha=1;") },
      { name: "@s/b", raw: 3, gzip: gzip("be;") },
    ]);
  });

  it("refuses a metafile without the output", () => {
    expect(() => composition({ root: "/p", outputFile: "/p/other/index.js", code, map, meta })).toThrow(/no output/);
  });
});
