// `npm run bench:stream`: how long a suggestion token takes from the local AI upstream writing it
// to a WebSocket client receiving it as `suggestion.delta` — through QStash delivery of the job,
// the Worker's streaming strategy, the JSON field reader, Durable Object RPC and the room's
// fan-out — and the first-token delay over the socket. Targets: p50 ≤ 1 ms, p99 ≤ 5 ms, first
// token ≤ 10 ms. Alone it starts and stops its own stack.
// Usage: npm run bench:stream [-- --generations 30 --token-delay 5]
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { expectJson, seedSession } from "../../local/api-client.ts";
import { formatTable, type Measure } from "./measures.ts";
import { firstTextAt, relayDelays } from "./relay.ts";
import { type BenchStack, SUGGESTIONS_REQUEST, withBenchStack } from "./stack.ts";
import { count, percentile } from "./stats.ts";

const now = () => performance.timeOrigin + performance.now();

type Frame = { type: string; generationId?: string; index?: number; delta?: string };

/** Budgets raised out of reach: this measures streaming, not spending. */
export const STREAM_BENCH_VARS = { AI_DAILY_BUDGET_USER_USD: "1000000", AI_DAILY_BUDGET_TOTAL_USD: "1000000" };
/** Generations one user starts: under RATE_LIMIT_AI's default 10 a minute. */
const GENERATIONS_PER_USER = 8;

export async function benchStream({ url, token: mint, aiUpstream }: BenchStack, { generations, tokenDelayMs }: { generations: number; tokenDelayMs: number }): Promise<Measure[]> {
  const perDelta: number[] = [];
  const firstToken: number[] = [];
  const firstText: number[] = [];
  const preamble: number[] = [];
  for (let done = 0; done < generations; done += GENERATIONS_PER_USER) {
    const runs = await streamRuns(url, await mint(`user_bench_stream_${Date.now()}_${done}`), aiUpstream, Math.min(GENERATIONS_PER_USER, generations - done), tokenDelayMs);
    perDelta.push(...runs.perDelta);
    firstToken.push(...runs.firstToken);
    firstText.push(...runs.firstText);
    preamble.push(...runs.preamble);
  }
  const bare = await bareRelay(url, aiUpstream, generations, tokenDelayMs);
  const at = (values: number[], p: number) => percentile([...values].sort((a, b) => a - b), p);
  const note = `${generations} generations of 3 suggestions, upstream tokens ${tokenDelayMs} ms apart, one socket per user; clock: performance.timeOrigin + performance.now() in this process (AI upstream and socket client)`;
  return [
    { name: "token relay p50 (upstream → socket)", value: at(perDelta, 50), baseline: at(bare, 50), unit: "ms", target: { max: 1 }, note },
    {
      name: "token relay p99 (upstream → socket)",
      value: at(perDelta, 99),
      baseline: at(bare, 99),
      unit: "ms",
      target: { max: 5 },
      note: "baseline: the same upstream stream relayed by a bare route and a bare Durable Object (each chunk as read, by RPC, to the socket; no SDK, no parsing, no storage) through the same local hops",
    },
    {
      name: "first token (upstream's first → first delta) p50",
      value: at(firstToken, 50),
      unit: "ms",
      note: `the upstream's own JSON preamble before any text is ${at(preamble, 50).toFixed(1)} ms of it at p50 (the tokens before the first character of a suggestion, ${tokenDelayMs} ms apart)`,
    },
    { name: "first token (upstream's first text → first delta) p50", value: at(firstText, 50), unit: "ms", target: { max: 10 }, note: "what the backend adds before the user sees the first character" },
  ];
}

async function streamRuns(url: string, token: string, aiUpstream: BenchStack["aiUpstream"], generations: number, tokenDelayMs: number) {
  const sessionId = await seedSession(url, token, 12);
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/api/v1/sessions/${sessionId}/ws`);
  const received: Array<{ frame: Frame; at: number }> = [];
  const listeners = new Set<() => void>();
  socket.addEventListener("message", (event) => {
    received.push({ frame: JSON.parse(String(event.data)) as Frame, at: now() });
    for (const listener of listeners) listener();
  });
  const until = (predicate: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve();
      };
      listeners.add(check);
      check();
    });
  await new Promise((resolve) => socket.addEventListener("open", resolve, { once: true }));
  socket.send(JSON.stringify({ type: "authenticate", token }));
  await until(() => received.some((r) => r.frame.type === "authenticated"), "authentication");

  const perDelta: number[] = [];
  const firstToken: number[] = [];
  const firstText: number[] = [];
  const preamble: number[] = [];
  for (let run = 0; run < generations; run++) {
    // Tokens a few ms apart, as vendors send them; otherwise they would arrive in one packet.
    aiUpstream.enqueueFault("any", { tokenDelayMs }, SUGGESTIONS_REQUEST);
    const started = await fetch(`${url}/api/v1/sessions/${sessionId}/generate-suggestions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ count: 3 }),
    });
    const { data } = await expectJson<{ data: { generationId: string } }>(started, 202, "POST generate-suggestions");
    const mine = (type: string) => received.filter((r) => r.frame.type === type && r.frame.generationId === data.generationId);
    await until(() => mine("suggestion.completed").length > 0 || mine("generation.failed").length > 0, "the generation's end");
    if (mine("generation.failed").length > 0) throw new Error(`generation failed: ${JSON.stringify(mine("generation.failed")[0]?.frame)}`);
    await until(() => received.at(-1)?.frame.type === "status", "the session's ready status");

    const request = aiUpstream.requests().findLast((r) => JSON.stringify(r.body).includes(SUGGESTIONS_REQUEST));
    if (!request) throw new Error("the upstream saw no suggestions request");
    const texts = { array: "suggestions", field: "text", count: 3 };
    const deltas = mine("suggestion.delta").map(({ frame, at }) => ({ index: frame.index!, length: frame.delta!.length, at }));
    perDelta.push(...relayDelays(request.streamed, deltas, texts));
    firstToken.push(deltas[0]!.at - request.streamed[0]!.at);
    const textStarted = firstTextAt(request.streamed, texts);
    firstText.push(deltas[0]!.at - textStarted);
    preamble.push(textStarted - request.streamed[0]!.at);
  }
  socket.close(1000);
  return { perDelta, firstToken, firstText, preamble };
}

/** The upstream tokens in a relayed chunk: one SSE event each; the stream's closing events carry no content. */
const tokensIn = (chunk: string) => chunk.split('"content":').length - 1;

/**
 * The relay's floor on this stack: the app's own suggestions request sent again, its stream
 * relayed chunk by chunk by the bench Worker's bare route and room. Each frame carries one or
 * more of the upstream's SSE events; it is timed from the token that wrote its last one.
 */
async function bareRelay(url: string, aiUpstream: BenchStack["aiUpstream"], runs: number, tokenDelayMs: number): Promise<number[]> {
  const template = aiUpstream.requests().findLast((r) => JSON.stringify(r.body).includes(SUGGESTIONS_REQUEST));
  if (!template) throw new Error("no suggestions request to relay bare");
  const room = `bare${Date.now()}`;
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/__bench/bare-relay/${room}/ws`);
  const frames: Array<{ text: string; at: number }> = [];
  socket.addEventListener("message", (event) => frames.push({ text: String(event.data), at: now() }));
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve, { once: true });
    socket.addEventListener("error", () => reject(new Error("bare relay socket failed")), { once: true });
  });
  const delays: number[] = [];
  for (let run = 0; run < runs; run++) {
    aiUpstream.enqueueFault("any", { tokenDelayMs }, SUGGESTIONS_REQUEST);
    const from = frames.length;
    const response = await fetch(`${url}/__bench/bare-relay/${room}/run`, { method: "POST", body: JSON.stringify(template.body) });
    if (response.status !== 204) throw new Error(`bare relay run answered ${response.status}`);
    const streamed = aiUpstream.requests().findLast((r) => JSON.stringify(r.body).includes(SUGGESTIONS_REQUEST))!.streamed;
    const tokensSoFar = () => frames.slice(from).reduce((sum, frame) => sum + tokensIn(frame.text), 0);
    // The route answers once the room has sent the last chunk; the socket may still be carrying it.
    for (const deadline = Date.now() + 5_000; tokensSoFar() < streamed.length && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 5));
    let token = 0;
    for (const frame of frames.slice(from)) {
      const events = tokensIn(frame.text);
      if (events === 0) continue;
      token += events;
      delays.push(frame.at - streamed[token - 1]!.at);
    }
    if (token !== streamed.length) throw new Error(`the bare relay delivered ${token} of ${streamed.length} tokens`);
  }
  socket.close(1000);
  return delays;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { generations: { type: "string", default: "30" }, "token-delay": { type: "string", default: "5" } },
  });
  await withBenchStack(STREAM_BENCH_VARS, async (stack) => {
    console.log(formatTable(await benchStream(stack, { generations: count(values, "generations"), tokenDelayMs: Number(values["token-delay"]) })));
  });
}
