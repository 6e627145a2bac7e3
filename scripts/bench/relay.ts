// How long each streamed text's characters took from the AI upstream to a socket. The Worker may
// send two upstream tokens as one delta (read in one chunk, or folded behind a slow publish), so
// a delta is matched by position: it left the upstream with the token that wrote its last character.
import { createFieldStream } from "../../src/ai/json-stream.ts";

/** A token the local upstream wrote, and when. */
export type UpstreamToken = { text: string; at: number };
/** A delta a socket got: which text, how many characters, when. */
export type DeltaArrival = { index: number; length: number; at: number };

/** Per delta, arrival minus the time its last character was written upstream (texts past `count` are not sent). */
export function relayDelays(streamed: UpstreamToken[], deltas: DeltaArrival[], options: { array: string; field: string; count: number }): number[] {
  const reader = createFieldStream(options.array, options.field);
  const written = new Map<number, Array<{ end: number; at: number }>>();
  for (const token of streamed) {
    for (const { index, delta } of reader.feed(token.text)) {
      if (index >= options.count) continue;
      const ends = written.get(index) ?? [];
      ends.push({ end: (ends.at(-1)?.end ?? 0) + delta.length, at: token.at });
      written.set(index, ends);
    }
  }
  const received = new Map<number, number>();
  return deltas.map((delta) => {
    const end = (received.get(delta.index) ?? 0) + delta.length;
    received.set(delta.index, end);
    const origin = written.get(delta.index)?.find((token) => token.end >= end);
    if (!origin) throw new Error(`text ${delta.index} got more characters than the upstream wrote`);
    return delta.at - origin.at;
  });
}

/** When the upstream wrote the first character of any sent text (after the JSON around it). */
export function firstTextAt(streamed: UpstreamToken[], options: { array: string; field: string; count: number }): number {
  const reader = createFieldStream(options.array, options.field);
  const token = streamed.find((candidate) => reader.feed(candidate.text).some((delta) => delta.index < options.count && delta.delta.length > 0));
  if (!token) throw new Error("the upstream wrote no text");
  return token.at;
}
