// The local AI upstream's test-facing shapes. Worker tests use them too, so the one import is
// type-only (erased, whichever way the importer resolves modules).
import type { ProviderName } from "../../src/ai/models.ts";

export type Vendor = ProviderName;

/** What a test can ask of one request (header `x-upstream-fault`, JSON, or the control queue). */
export interface Fault {
  /** Answer with this HTTP status in the vendor's error shape (429, 500, 503, 400, 401…). */
  status?: number;
  retryAfterSeconds?: number;
  /** Delay before the first token (or a whole non-streamed answer); over the upstream's pacing. */
  firstTokenDelayMs?: number;
  /** Delay between streamed tokens; over the upstream's pacing. */
  tokenDelayMs?: number;
  /** Close the connection after this many streamed tokens, without finishing the stream. */
  cutAfterTokens?: number;
  /** Accept the request and never answer. */
  hang?: boolean;
  /** Answer 200 with a body that is not valid JSON (or, streaming, a broken event). */
  malformed?: boolean;
  /** Answer with exactly this text (streamed in small pieces) instead of the generated one. */
  output?: string;
}

export interface RecordedRequest {
  id: string;
  vendor: Vendor;
  path: string;
  body: unknown;
  fault: Fault | undefined;
  /** The client went away before the answer was complete (e.g. an aborted request). */
  aborted: boolean;
  completed: boolean;
  /** Each streamed token as written, with when (performance.timeOrigin + performance.now(), ms). */
  streamed: Array<{ text: string; at: number }>;
}
