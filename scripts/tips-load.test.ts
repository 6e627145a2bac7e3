import { describe, expect, it } from "vitest";
import { parseTipFile, parseTipFiles } from "../src/modules/tips/catalog";
import { readTipFiles } from "./tips-load";

describe("the tip files the loader reads", () => {
  it("hold 60+ distinct tips, covering every phase and general ones, each with a stable id", async () => {
    const seeds = await parseTipFiles(readTipFiles());
    expect(seeds.length).toBeGreaterThanOrEqual(60);
    for (const phase of [1, 2, 3, 4, null]) expect(seeds.filter((seed) => seed.phase === phase).length, `phase ${phase}`).toBeGreaterThanOrEqual(8);
    expect(new Set(seeds.map((seed) => seed.text)).size).toBe(seeds.length);
    expect(new Set(seeds.map((seed) => seed.id)).size).toBe(seeds.length);
    // Same files, same ids: what makes the loader idempotent.
    expect((await parseTipFiles(readTipFiles())).map((seed) => seed.id)).toEqual(seeds.map((seed) => seed.id));
  });

  it("rejects a malformed file instead of loading part of it", async () => {
    await expect(parseTipFile("general.md", "## Not A Slug\nSome text that is long enough to pass.")).rejects.toThrow(/slug/);
    await expect(parseTipFile("general.md", "## too-short\nHi.")).rejects.toThrow(/20–400/);
    await expect(parseTipFiles([{ name: "general.md", text: "## same\nA tip that is long enough to pass.\n## same\nAnother tip long enough to pass." }])).rejects.toThrow(/twice/);
  });

  it("takes the phase from the file name and makes the id from file and key", async () => {
    const [phased] = await parseTipFile("phase-3-flirting.md", "# Heading\n\n## be-kind\nBe kind, and say what you mean plainly.\n");
    const [general] = await parseTipFile("general.md", "## be-kind\nBe kind, and say what you mean plainly.\n");
    expect(phased).toMatchObject({ phase: 3, text: "Be kind, and say what you mean plainly." });
    expect(general!.phase).toBeNull();
    expect(phased!.id).toMatch(/^tip_[0-9a-f]{24}$/);
    expect(phased!.id).not.toBe(general!.id);
  });
});
