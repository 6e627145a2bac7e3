import { z as openApiZ } from "@hono/zod-openapi";
import { z as zod } from "zod";
import { describe, expect, it } from "vitest";
import bundledDefault, { z as bundled } from "./zod-without-locales";

describe("the bundle's zod (wrangler.toml [alias])", () => {
  it("has every member of zod's z, the very same values, but the locales", () => {
    const expected = Object.keys(zod).filter((key) => key !== "locales" && key !== "core");
    expect(Object.keys(bundled).sort()).toEqual(expected.sort());
    for (const key of expected) expect(bundled[key as keyof typeof bundled], key).toBe(zod[key as keyof typeof zod]);
    expect(bundledDefault).toBe(bundled);
  });

  it("builds schemas that @hono/zod-openapi has extended, and answers in English", () => {
    const schema = bundled.object({ name: bundled.string().min(2) }).openapi("Named");
    expect(schema).toBeInstanceOf(openApiZ.ZodObject);
    const result = schema.safeParse({ name: "x" });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe("Too small: expected string to have >=2 characters");
  });
});
