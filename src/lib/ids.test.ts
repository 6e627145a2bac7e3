import { describe, expect, it } from "vitest";
import { newId } from "./ids";

describe("newId", () => {
  const ids = Array.from({ length: 20_000 }, newId);

  it("gives 24 characters, a lower-case letter first, then lower-case letters and digits (what the API's id patterns accept)", () => {
    for (const id of ids) expect(id).toMatch(/^[a-z][a-z0-9]{23}$/);
  });

  it("never repeats, and uses every character about equally in every position", () => {
    expect(new Set(ids).size).toBe(ids.length);
    // 20,000 draws of 36 characters: about 556 of each in a position. A modulo bias would put
    // the first characters 1/64 above the rest; chance alone keeps each within ±25% here.
    for (const position of [1, 12, 23]) {
      const counts = new Map<string, number>();
      for (const id of ids) counts.set(id[position]!, (counts.get(id[position]!) ?? 0) + 1);
      expect(counts.size).toBe(36);
      for (const n of counts.values()) expect(Math.abs(n - ids.length / 36)).toBeLessThan((ids.length / 36) * 0.25);
    }
    const firsts = new Set(ids.map((id) => id[0]));
    expect(firsts.size).toBe(26);
  });
});
