/**
 * Reads structured output as it streams and hands out, as soon as they arrive, the characters
 * of one string field of each item of one top-level array — e.g. `suggestions[i].text` — so a
 * client sees reply suggestions being written, not JSON. The full answer is still parsed and
 * validated at the end; this only has to follow the structure, not judge it.
 */
export type FieldDelta = { index: number; delta: string };

type Frame = { kind: "object"; key: string | null; awaitingKey: boolean } | { kind: "array"; index: number };

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", b: "\b", f: "\f", '"': '"', "\\": "\\", "/": "/" };

export function createFieldStream(arrayKey: string, field: string) {
  const stack: Frame[] = [];
  let inString = false;
  let isKey = false;
  let emitIndex: number | null = null;
  let keyBuffer = "";
  let escape: "none" | "backslash" | "unicode" = "none";
  let unicode = "";
  // A high surrogate waits for its low half, so no delta ends inside a character.
  let pendingHigh = "";

  const startString = () => {
    const top = stack.at(-1);
    isKey = top?.kind === "object" && top.awaitingKey;
    keyBuffer = "";
    const [root, array, item] = stack;
    emitIndex =
      !isKey &&
      stack.length === 3 &&
      root?.kind === "object" &&
      root.key === arrayKey &&
      array?.kind === "array" &&
      item?.kind === "object" &&
      item.key === field
        ? array.index
        : null;
  };

  return {
    /** Consumes the next piece of the answer; returns what it added to each field, in order. */
    feed(chunk: string): FieldDelta[] {
      const out: FieldDelta[] = [];
      const emit = (text: string) => {
        if (emitIndex === null || text === "") return;
        const last = out.at(-1);
        if (last && last.index === emitIndex) last.delta += text;
        else out.push({ index: emitIndex, delta: text });
      };
      const character = (text: string) => {
        if (isKey) keyBuffer += text;
        else if (pendingHigh) {
          emit(pendingHigh + text);
          pendingHigh = "";
        } else if (/[\uD800-\uDBFF]$/.test(text)) pendingHigh = text;
        else emit(text);
      };

      for (const char of chunk) {
        if (inString) {
          if (escape === "backslash") {
            if (char === "u") {
              escape = "unicode";
              unicode = "";
            } else {
              escape = "none";
              character(ESCAPES[char] ?? char);
            }
          } else if (escape === "unicode") {
            unicode += char;
            if (unicode.length === 4) {
              escape = "none";
              character(String.fromCharCode(Number.parseInt(unicode, 16)));
            }
          } else if (char === "\\") escape = "backslash";
          else if (char === '"') {
            inString = false;
            const top = stack.at(-1);
            if (isKey && top?.kind === "object") top.key = keyBuffer;
            emitIndex = null;
          } else character(char);
          continue;
        }
        const top = stack.at(-1);
        if (char === '"') {
          inString = true;
          startString();
        } else if (char === "{") stack.push({ kind: "object", key: null, awaitingKey: true });
        else if (char === "[") stack.push({ kind: "array", index: 0 });
        else if (char === "}" || char === "]") stack.pop();
        else if (char === ":" && top?.kind === "object") top.awaitingKey = false;
        else if (char === ",") {
          if (top?.kind === "object") top.awaitingKey = true;
          else if (top?.kind === "array") top.index++;
        }
      }
      return out;
    },
  };
}
