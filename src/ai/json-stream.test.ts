import { describe, expect, it } from "vitest";
import { createFieldStream } from "./json-stream";

function collect(chunks: string[]) {
  const stream = createFieldStream("suggestions", "text");
  const texts: string[] = [];
  const order: number[] = [];
  for (const chunk of chunks) {
    for (const { index, delta } of stream.feed(chunk)) {
      texts[index] = (texts[index] ?? "") + delta;
      if (order.at(-1) !== index) order.push(index);
    }
  }
  return { texts, order };
}

function split(text: string, sizes: number[]): string[] {
  const out: string[] = [];
  for (let i = 0, n = 0; i < text.length; n++) {
    const size = sizes[n % sizes.length]!;
    out.push(text.slice(i, i + size));
    i += size;
  }
  return out;
}

describe("createFieldStream", () => {
  const answer = {
    suggestions: [
      { tone: "playful", text: 'Patagonia?! Ok, "tell me everything" \\ starting with the view 🏔️' },
      { text: "Line one\nline two\ttabbed — é ü 你好", tone: "sincere", extra: { text: "not this one" } },
      { tone: "witty", text: "" },
      { tone: "bold", text: "\u2028 and a \\u escape: \u00e9" },
    ],
    text: "not this one either",
  };
  const json = JSON.stringify(answer, null, 1);

  it("yields exactly each item's field, whatever the chunking, escapes and surrogate pairs included", () => {
    for (const sizes of [[1], [2, 3], [7], [12], [json.length]]) {
      const { texts, order } = collect(split(json, sizes));
      expect(Array.from(texts, (t) => t ?? "")).toEqual(answer.suggestions.map((s) => s.text));
      expect(order).toEqual([0, 1, 3]);
    }
  });

  it("keeps a character whose surrogate halves arrive in different chunks in one delta", () => {
    const escaped = JSON.stringify({ suggestions: [{ text: "🏔️" }] }).replace("🏔", "\\ud83c\\udfd4");
    const stream = createFieldStream("suggestions", "text");
    const deltas = split(escaped, [1]).flatMap((chunk) => stream.feed(chunk));
    for (const { delta } of deltas) expect(delta).not.toMatch(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
    expect(deltas.map((d) => d.delta).join("")).toBe("🏔️");
  });

  it("ignores the same key elsewhere and yields nothing for other shapes", () => {
    expect(collect([JSON.stringify({ other: [{ text: "no" }], suggestions: "no" })]).texts).toEqual([]);
    expect(collect(['{"suggestions": [["text"], {"text": 1}]}']).texts).toEqual([]);
  });
});
