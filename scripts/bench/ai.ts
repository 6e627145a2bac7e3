// `npm run bench:ai`: what the adapter path (official SDK + our adapter) adds on top of reading
// the same stream with a raw fetch, against the local AI upstream, in the same run.
// For each vendor: per-delta arrival overhead (p50/p99) and time-to-first-token overhead.
import { startAiUpstream } from "../../local/ai-upstream/server.ts";
import { createAnthropicAdapter } from "../../src/ai/providers/anthropic";
import { createGeminiAdapter } from "../../src/ai/providers/gemini";
import { createOpenAiAdapter } from "../../src/ai/providers/openai";
import { models } from "../../src/ai/models";
import type { GenerateRequest, ProviderAdapter, ProviderName } from "../../src/ai/types";

const RUNS = 30;
const TOKEN_DELAY_MS = 2;
const fault = JSON.stringify({ tokenDelayMs: TOKEN_DELAY_MS });
const upstream = await startAiUpstream({ port: 0 });
const request: GenerateRequest = { system: "Suggest a reply.", messages: [{ role: "user", content: "Guess where I am" }], maxTokens: 24 };

const adapters: Record<ProviderName, ProviderAdapter> = {
  openai: createOpenAiAdapter({ apiKey: "local", baseURL: upstream.baseUrls.openai }),
  anthropic: createAnthropicAdapter({ apiKey: "local", baseURL: upstream.baseUrls.anthropic }),
  gemini: createGeminiAdapter({ apiKey: "local", baseURL: upstream.baseUrls.gemini }),
};

/** The same request as a raw streaming fetch, in each vendor's wire format. */
const rawRequest: Record<ProviderName, (model: string) => Promise<Response>> = {
  openai: (model) =>
    fetch(`${upstream.baseUrls.openai}/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer local", "content-type": "application/json", "x-upstream-fault": fault },
      body: JSON.stringify({ model, stream: true, messages: [{ role: "system", content: request.system }, ...request.messages], max_completion_tokens: 24 }),
    }),
  anthropic: (model) =>
    fetch(`${upstream.baseUrls.anthropic}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": "local", "content-type": "application/json", "x-upstream-fault": fault },
      body: JSON.stringify({ model, stream: true, system: request.system, messages: request.messages, max_tokens: 24 }),
    }),
  gemini: (model) =>
    fetch(`${upstream.baseUrls.gemini}/v1beta/models/${model}:streamGenerateContent?alt=sse`, {
      method: "POST",
      headers: { "x-goog-api-key": "local", "content-type": "application/json", "x-upstream-fault": fault },
      body: JSON.stringify({
        contents: [{ role: "user", parts: [{ text: request.messages[0]!.content }] }],
        systemInstruction: { parts: [{ text: request.system }] },
        generationConfig: { maxOutputTokens: 24 },
      }),
    }),
};

// Every model of the Worker's list, through its vendor's adapter and as a raw fetch.
const vendors = Object.values(models).map(({ provider, apiModel }) => ({
  name: provider,
  adapter: adapters[provider],
  model: apiModel,
  raw: () => rawRequest[provider](apiModel),
}));

/** Arrival times (ms since the request started) of each data event of a raw SSE stream. */
async function rawArrivals(open: () => Promise<Response>): Promise<number[]> {
  const started = performance.now();
  const response = await open();
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const arrivals: number[] = [];
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      if (/"(content|text|text_delta)"\s*:\s*"[^"]/.test(event) || /"text":"[^"]/.test(event)) arrivals.push(performance.now() - started);
    }
  }
  return arrivals;
}

async function adapterArrivals(adapter: ProviderAdapter, model: string): Promise<number[]> {
  // The adapter goes through the SDK, so the fault travels by the control queue instead of a header.
  upstream.enqueueFault("any", { tokenDelayMs: TOKEN_DELAY_MS });
  const started = performance.now();
  const arrivals: number[] = [];
  for await (const event of adapter.stream(model, request, new AbortController().signal)) {
    if (event.type === "delta") arrivals.push(performance.now() - started);
  }
  return arrivals;
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

console.log(`AI adapter overhead vs raw fetch, local upstream, ${RUNS} runs per path, ${TOKEN_DELAY_MS} ms between tokens`);
for (const vendor of vendors) {
  const perDelta: number[] = [];
  const firstToken: number[] = [];
  const rawTtft: number[] = [];
  for (let run = 0; run < RUNS + 3; run++) {
    upstream.reset();
    const raw = await rawArrivals(vendor.raw);
    const viaAdapter = await adapterArrivals(vendor.adapter, vendor.model);
    if (run < 3) continue; // warm-up
    const n = Math.min(raw.length, viaAdapter.length);
    // Same stream, same pacing: how much later each delta reaches the adapter's caller.
    for (let i = 0; i < n; i++) perDelta.push(viaAdapter[i]! - raw[i]!);
    firstToken.push(viaAdapter[0]! - raw[0]!);
    rawTtft.push(raw[0]!);
  }
  console.log(
    `${vendor.name.padEnd(9)} per-delta overhead p50 ${pct(perDelta, 50).toFixed(3)} ms, p99 ${pct(perDelta, 99).toFixed(3)} ms; ` +
      `first-token overhead p50 ${pct(firstToken, 50).toFixed(2)} ms, p99 ${pct(firstToken, 99).toFixed(2)} ms (raw TTFT p50 ${pct(rawTtft, 50).toFixed(2)} ms)`,
  );
}
await upstream.close();
