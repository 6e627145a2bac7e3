// `npm run bench:generations`: many suggestion generations started at once across many users,
// the local AI upstream streaming each like a real model (first token after 400 ms, then one
// every 30 ms). Every generation must complete with every token on its socket, in seq order,
// the deltas adding up to the completed suggestions. Reports the total time, the token relay
// (upstream token written → suggestion.delta received) under that load, and what a generation
// costs at list prices from `ai_calls` (phase and analysis, embedding, suggestions).
// Alone it starts and stops its own stack.
// Usage: npm run bench:generations [-- --users 100 --generations 200 --count 3]
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { expectJson } from "../../local/api-client.ts";
import { formatTable, type Measure } from "./measures.ts";
import { type DeltaArrival, relayDelays } from "./relay.ts";
import { type BenchStack, SUGGESTIONS_REQUEST, withBenchStack } from "./stack.ts";
import { count, percentile } from "./stats.ts";

const PACING = { firstTokenDelayMs: 400, tokenDelayMs: 30 };
const FOLLOW_MS = 180_000;
const now = () => performance.timeOrigin + performance.now();

type Frame = { type: string; seq?: number; generationId?: string; index?: number; delta?: string; suggestions?: Array<{ text: string }>; code?: string };

/** Budgets and the per-IP upgrade limit (every socket comes from this one address) out of the way; user and AI rate limits stay. */
export const generationsBenchVars = (sockets: number) => ({ AI_DAILY_BUDGET_USER_USD: "1000000", AI_DAILY_BUDGET_TOTAL_USD: "1000000", RATE_LIMIT_WS_UPGRADE: String(sockets + 10) });

export async function benchGenerations(stack: BenchStack, options: { users: number; generations: number; count: number }): Promise<Measure[]> {
  const run = Date.now();
  // One session per generation, each with a marker in its chat so its upstream request can be found.
  const targets: Array<{ token: string; sessionId: string; marker: string; socket: Awaited<ReturnType<typeof follow>> }> = [];
  const tokens = await Promise.all(Array.from({ length: options.users }, (_, i) => stack.token(`user_bench_gen_${run}_${i}`)));
  for (let i = 0; i < options.generations; i += 20) {
    targets.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(20, options.generations - i) }, async (_, j) => {
          const token = tokens[(i + j) % tokens.length]!;
          const marker = `bench-chat-${run}-${i + j}`;
          const created = await fetch(`${stack.url}/api/v1/sessions`, {
            method: "POST",
            headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
            body: JSON.stringify({
              type: "text",
              messages: [
                { sender: "match", text: `(${marker}) so what do you do when you're not on here?` },
                { sender: "user", text: "mostly climbing, and pretending to cook" },
                { sender: "match", text: "pretending? now I need to know what the worst dish was" },
              ],
            }),
          });
          const sessionId = (await expectJson<{ data: { id: string } }>(created, 201, "POST /sessions")).data.id;
          return { token, sessionId, marker, socket: await follow(stack.url, sessionId, token) };
        }),
      )),
    );
  }
  for (let i = 0; i < targets.length; i++) stack.aiUpstream.enqueueFault("any", PACING, SUGGESTIONS_REQUEST);

  const began = performance.now();
  const starts = await Promise.all(
    targets.map(async ({ token, sessionId }) => {
      const response = await fetch(`${stack.url}/api/v1/sessions/${sessionId}/generate-suggestions`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ count: options.count }),
      });
      const text = await response.text();
      return response.status === 202 ? (JSON.parse(text) as { data: { generationId: string } }).data.generationId : `${response.status} ${text.slice(0, 120)}`;
    }),
  );
  const refused = starts.filter((start) => start.includes(" "));
  if (refused.length > 0) throw new Error(`${refused.length} of ${targets.length} starts refused, e.g. ${refused[0]}`);
  const ends = await Promise.all(targets.map((target, i) => target.socket.end(starts[i]!, FOLLOW_MS)));
  const totalSeconds = (performance.now() - began) / 1000;
  for (const target of targets) target.socket.close();

  // Every generation completed, in order, and its deltas spell its suggestions.
  const broken = ends.flatMap((end, i) => (end.problem ? [`${targets[i]!.sessionId}: ${end.problem}`] : []));
  if (broken.length > 0) throw new Error(`${broken.length} of ${targets.length} generations broken, e.g. ${broken.slice(0, 3).join("; ")}`);

  // Relay under load: a delta came from the upstream token that brought its last character. Two
  // tokens read in one chunk (TCP coalesces under load) leave the Worker as one delta.
  const relay: number[] = [];
  const requests = stack.aiUpstream.requests();
  const suggestionsRequestOf = (marker: string) => {
    // In brackets: "bench-chat-…-1" is also the start of "…-10".
    const request = requests.find((r) => JSON.stringify(r.body).includes(SUGGESTIONS_REQUEST) && JSON.stringify(r.body).includes(`(${marker})`));
    if (!request) throw new Error(`no upstream suggestions request for ${marker}`);
    return request;
  };
  const streams = targets.map((target) => suggestionsRequestOf(target.marker).streamed);
  streams.forEach((streamed, i) => relay.push(...relayDelays(streamed, ends[i]!.deltas, { array: "suggestions", field: "text", count: options.count })));
  relay.sort((a, b) => a - b);
  // Where the time went, per generation: start to the suggestions request reaching the
  // upstream (claim, phase, embedding, retrieval), the upstream's own stream, and its last
  // token to the last delta on the socket.
  const t0 = performance.timeOrigin + began;
  const stages = streams.map((streamed, i) => {
    const arrived = streamed[0]!.at - PACING.firstTokenDelayMs;
    return { before: arrived - t0, streaming: streamed.at(-1)!.at - arrived, after: ends[i]!.deltas.at(-1)!.at - streamed.at(-1)!.at };
  });
  const median = (pick: (stage: (typeof stages)[number]) => number) => (percentile(stages.map(pick).sort((a, b) => a - b), 50) / 1000).toFixed(2);
  const stageNote = `p50 per generation: ${median((s) => s.before)} s to its suggestions request, ${median((s) => s.streaming)} s of upstream stream, ${median((s) => s.after)} s from its last token to its last delta`;

  const cost = await costPerGeneration(stack, run);
  const name = `${options.generations} generations at once (${options.users} users)`;
  return [
    { name: `${name}: all completed in`, value: totalSeconds, unit: "s", note: `upstream paced ${PACING.firstTokenDelayMs} ms + ${PACING.tokenDelayMs} ms/token for the suggestions stream; every delta in seq order and spelling its suggestion; ${stageNote}` },
    { name: `${name}: token relay p50`, value: percentile(relay, 50), unit: "ms", target: { max: 1 } },
    { name: `${name}: token relay p99`, value: percentile(relay, 99), unit: "ms", target: { max: 5 } },
    {
      name: "AI cost per suggestion generation",
      value: cost.perGeneration,
      unit: "USD",
      target: { max: 0.002 },
      note: `from ai_calls at list prices, ${options.count} suggestions: ${cost.byKind}; the local upstream counts tokens like the vendor would`,
    },
  ];
}

/** What the run's generations cost, in all and per kind of call, from the ledger the Worker keeps. */
async function costPerGeneration(stack: BenchStack, run: number) {
  const rows = (await stack.sql(
    `select kind, model, count(*)::int as calls, sum(cost_usd)::float8 as usd, sum(input_tokens)::int as input, sum(output_tokens)::int as output
     from ai_calls join users on users.id = ai_calls.user_id
     where users.clerk_id like $1 group by kind, model order by kind`,
    [`user_bench_gen_${run}_%`],
  )) as Array<[string, string, number, number, number, number]>;
  const generations = rows.find(([kind]) => kind === "suggestions")?.[2] ?? 0;
  const total = rows.reduce((sum, [, , , usd]) => sum + usd, 0);
  const byKind = rows.map(([kind, model, calls, usd, input, output]) => `${kind} ${model} $${(usd / Math.max(1, generations)).toFixed(5)} (${Math.round(input / calls)} in/${Math.round(output / calls)} out tokens)`).join(", ");
  return { perGeneration: generations === 0 ? NaN : total / generations, byKind };
}

/** An authenticated socket on a session's room that records its frames until its generation ends. */
async function follow(url: string, sessionId: string, token: string) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/api/v1/sessions/${sessionId}/ws`);
  const frames: Array<{ frame: Frame; at: number }> = [];
  let onFrame: (() => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "authenticate", token })), { once: true });
    ws.addEventListener("error", () => reject(new Error(`socket for ${sessionId} failed`)), { once: true });
    ws.addEventListener("message", (message) => {
      const frame = JSON.parse(String(message.data)) as Frame;
      frames.push({ frame, at: now() });
      if (frame.type === "authenticated") resolve();
      onFrame?.();
    });
  });
  return {
    end: (generationId: string, timeoutMs: number) =>
      new Promise<{ problem?: string; deltas: DeltaArrival[] }>((resolve) => {
        const check = () => {
          const last = frames.find(({ frame }) => frame.generationId === generationId && ["suggestion.completed", "generation.failed", "generation.cancelled"].includes(frame.type));
          if (!last) return false;
          clearTimeout(timer);
          resolve(judge(frames, generationId));
          return true;
        };
        const timer = setTimeout(() => resolve({ problem: "no end within the timeout", deltas: [] }), timeoutMs);
        if (!check()) onFrame = () => void check();
      }),
    close: () => ws.close(),
  };
}

function judge(frames: Array<{ frame: Frame; at: number }>, generationId: string) {
  const events = frames.filter(({ frame }) => typeof frame.seq === "number" && frame.type !== "authenticated" && frame.type !== "error");
  const outOfOrder = events.some(({ frame }, i) => i > 0 && frame.seq! <= events[i - 1]!.frame.seq!);
  const mine = frames.filter(({ frame }) => frame.generationId === generationId);
  const completed = mine.find(({ frame }) => frame.type === "suggestion.completed")?.frame;
  const deltas = mine.filter(({ frame }) => frame.type === "suggestion.delta");
  const spelled = new Map<number, string>();
  for (const { frame } of deltas) spelled.set(frame.index!, (spelled.get(frame.index!) ?? "") + frame.delta);
  const problem = !completed
    ? `ended ${mine.at(-1)?.frame.type} ${mine.at(-1)?.frame.code ?? ""}`
    : outOfOrder
      ? "events out of seq order"
      : mine.some(({ frame }) => frame.type === "generation.restarted")
        ? "restarted"
        : completed.suggestions?.some((suggestion, i) => spelled.get(i) !== suggestion.text)
          ? "deltas do not spell the completed suggestions"
          : undefined;
  return { ...(problem ? { problem } : {}), deltas: deltas.map(({ frame, at }): DeltaArrival => ({ index: frame.index!, length: frame.delta!.length, at })) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { users: { type: "string", default: "100" }, generations: { type: "string", default: "200" }, count: { type: "string", default: "3" } },
  });
  const generations = count(values, "generations");
  await withBenchStack(generationsBenchVars(generations), async (stack) => {
    console.log(formatTable(await benchGenerations(stack, { users: count(values, "users"), generations, count: count(values, "count") })));
  });
}
