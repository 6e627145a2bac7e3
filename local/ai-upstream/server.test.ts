import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI, Type } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { embeddingModel, models } from "../../src/ai/models.ts";
import { type AiUpstream, startAiUpstream } from "./server.ts";

const cosine = (a: number[], b: number[]) => a.reduce((sum, value, i) => sum + value * b[i]!, 0);
const messages = [{ role: "user" as const, content: "She said she loves hiking. What do I reply?" }];
/** The vendor models the Worker asks for, from its model list. */
const apiModel = { openai: models["gpt-4o"].apiModel, anthropic: models["claude-sonnet"].apiModel, gemini: models["gemini-flash"].apiModel };
/** Any JSON Schema with the usual keywords (the Worker's own are run through the stand-in in src/ai/prompts/schemas.test.ts). */
const fixtureSchema = {
  type: "object",
  properties: {
    phase: { type: "integer", minimum: 1, maximum: 4 },
    confidence: { type: "number", minimum: 0, maximum: 1 },
    reasons: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 3 },
  },
  required: ["phase", "confidence", "reasons"],
  additionalProperties: false,
};

describe("local AI upstream through the official SDKs", () => {
  let upstream: AiUpstream;
  let openai: OpenAI;
  let anthropic: Anthropic;
  let gemini: GoogleGenAI;

  beforeAll(async () => {
    upstream = await startAiUpstream({ port: 0 });
    openai = new OpenAI({ apiKey: "local", baseURL: upstream.baseUrls.openai, maxRetries: 0 });
    anthropic = new Anthropic({ apiKey: "local", baseURL: upstream.baseUrls.anthropic, maxRetries: 0 });
    gemini = new GoogleGenAI({ apiKey: "local", httpOptions: { baseUrl: upstream.baseUrls.gemini } });
  });
  afterAll(() => upstream.close());
  beforeEach(() => upstream.reset());

  it("OpenAI: deterministic completions; the stream's deltas add up to the same text, with usage", async () => {
    const first = await openai.chat.completions.create({ model: apiModel.openai, messages });
    const again = await openai.chat.completions.create({ model: apiModel.openai, messages });
    const text = first.choices[0]?.message.content ?? "";
    expect(text.length).toBeGreaterThan(10);
    expect(again.choices[0]?.message.content).toBe(text);

    const stream = await openai.chat.completions.create({ model: apiModel.openai, messages, stream: true, stream_options: { include_usage: true } });
    const deltas: string[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta.content;
      if (delta) deltas.push(delta);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.join("")).toBe(text);
    expect(usage?.completion_tokens).toBe(deltas.length);
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it("OpenAI: JSON-schema structured output fits the schema; images are accepted", async () => {
    const response = await openai.chat.completions.create({
      model: apiModel.openai,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Read this chat" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          ],
        },
      ],
      response_format: { type: "json_schema", json_schema: { name: "phase", schema: fixtureSchema, strict: true } },
    });
    const parsed = JSON.parse(response.choices[0]?.message.content ?? "") as { phase: number; confidence: number; reasons: string[] };
    expect(Number.isInteger(parsed.phase) && parsed.phase >= 1 && parsed.phase <= 4).toBe(true);
    expect(parsed.confidence).toBeGreaterThanOrEqual(0);
    expect(parsed.confidence).toBeLessThanOrEqual(1);
    expect(parsed.reasons.length).toBeGreaterThanOrEqual(1);
  });

  it("OpenAI: 1536-dimension embeddings where shared words mean closeness", async () => {
    const { data } = await openai.embeddings.create({
      model: embeddingModel.apiModel,
      input: ["coffee date on friday evening", "friday coffee plans", "quantum chromodynamics lecture notes"],
    });
    const [a, b, c] = data.map((item) => item.embedding);
    expect(a).toHaveLength(1536);
    expect(cosine(a!, a!)).toBeCloseTo(1, 5);
    expect(cosine(a!, b!)).toBeGreaterThan(cosine(a!, c!) + 0.3);
  });

  it("Anthropic: messages, streamed text events and a forced tool's structured input", async () => {
    const message = await anthropic.messages.create({ model: apiModel.anthropic, max_tokens: 200, messages });
    const text = message.content.map((block) => (block.type === "text" ? block.text : "")).join("");
    expect(text.length).toBeGreaterThan(10);
    expect(message.usage.output_tokens).toBeGreaterThan(0);

    const deltas: string[] = [];
    const stream = anthropic.messages.stream({ model: apiModel.anthropic, max_tokens: 200, messages });
    stream.on("text", (delta) => deltas.push(delta));
    const final = await stream.finalMessage();
    expect(deltas.join("")).toBe(text);
    expect(final.usage.output_tokens).toBe(deltas.length);
    expect(final.stop_reason).toBe("end_turn");

    const tool = await anthropic.messages.create({
      model: apiModel.anthropic,
      max_tokens: 200,
      messages,
      tools: [{ name: "report_phase", description: "Report the phase", input_schema: fixtureSchema as Anthropic.Tool.InputSchema }],
      tool_choice: { type: "tool", name: "report_phase" },
    });
    const use = tool.content.find((block) => block.type === "tool_use");
    expect(use?.type === "tool_use" && (use.input as { phase: number }).phase).toBeGreaterThanOrEqual(1);
  });

  it("Gemini: generateContent, streamGenerateContent over SSE, response schemas and embeddings", async () => {
    const contents = [{ role: "user", parts: [{ text: "Write an opener for Sam who loves climbing" }] }];
    const response = await gemini.models.generateContent({ model: apiModel.gemini, contents });
    const text = response.text ?? "";
    expect(text.length).toBeGreaterThan(10);
    expect(response.usageMetadata?.candidatesTokenCount).toBeGreaterThan(0);

    const parts: string[] = [];
    for await (const chunk of await gemini.models.generateContentStream({ model: apiModel.gemini, contents })) {
      if (chunk.text) parts.push(chunk.text);
    }
    expect(parts.join("")).toBe(text);

    const structured = await gemini.models.generateContent({
      model: apiModel.gemini,
      contents: [{ role: "user", parts: [{ text: "Read this" }, { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } }] }],
      config: {
        responseMimeType: "application/json",
        responseSchema: {
          type: Type.OBJECT,
          properties: { matchName: { type: Type.STRING }, platform: { type: Type.STRING, enum: ["tinder", "hinge"] } },
        },
      },
    });
    const parsed = JSON.parse(structured.text ?? "") as { matchName: string; platform: string };
    expect(["tinder", "hinge"]).toContain(parsed.platform);
    expect(typeof parsed.matchName).toBe("string");

    const embedded = await gemini.models.embedContent({ model: "gemini-embedding-001", contents: ["first text", "second text"] });
    expect(embedded.embeddings).toHaveLength(2);
    expect(embedded.embeddings?.[0]?.values).toHaveLength(1536);
  });

  it("records each request, including the prompt it carried", async () => {
    await openai.chat.completions.create({ model: apiModel.openai, messages });
    const [recorded] = upstream.requests();
    expect(recorded).toMatchObject({ vendor: "openai", path: "/v1/chat/completions", completed: true, aborted: false });
    expect(JSON.stringify(recorded?.body)).toContain("loves hiking");
  });
});

describe("fault injection", () => {
  let upstream: AiUpstream;
  let openai: OpenAI;

  beforeAll(async () => {
    upstream = await startAiUpstream({ port: 0 });
    openai = new OpenAI({ apiKey: "local", baseURL: upstream.baseUrls.openai, maxRetries: 0 });
  });
  afterAll(() => upstream.close());
  beforeEach(() => upstream.reset());

  it("answers 429 with Retry-After and 503 in the vendor's error shape", async () => {
    upstream.enqueueFault("openai", { status: 429, retryAfterSeconds: 2 });
    const limited = await openai.chat.completions.create({ model: apiModel.openai, messages }).catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect((limited as InstanceType<typeof OpenAI.RateLimitError>).headers.get("retry-after")).toBe("2");

    const unavailable = await openai.chat.completions
      .create({ model: apiModel.openai, messages }, { headers: { "x-upstream-fault": JSON.stringify({ status: 503 }) } })
      .catch((error: unknown) => error);
    expect((unavailable as { status?: number }).status).toBe(503);
    // The fault applied once: the next call succeeds.
    expect((await openai.chat.completions.create({ model: apiModel.openai, messages })).choices).toHaveLength(1);
  });

  it("cuts a stream after N tokens, and delays the first token", async () => {
    upstream.enqueueFault("openai", { cutAfterTokens: 3, firstTokenDelayMs: 150 });
    const started = Date.now();
    const stream = await openai.chat.completions.create({ model: apiModel.openai, messages, stream: true });
    const deltas: string[] = [];
    const failure = await (async () => {
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta.content;
        if (delta) deltas.push(delta);
      }
    })().catch((error: unknown) => error);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(deltas).toHaveLength(3);
    expect(failure).toBeDefined();
  });

  it("sees the client abort a slow stream, and a client timeout end a hang", async () => {
    upstream.enqueueFault("openai", { tokenDelayMs: 200 });
    const controller = new AbortController();
    const stream = await openai.chat.completions.create({ model: apiModel.openai, messages, stream: true }, { signal: controller.signal });
    const deltas: string[] = [];
    // The SDK's stream ends quietly when its signal aborts; what matters is the upstream side.
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta.content;
      if (delta) {
        deltas.push(delta);
        controller.abort();
      }
    }
    expect(deltas).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(upstream.requests()[0]).toMatchObject({ aborted: true, completed: false });

    upstream.enqueueFault("openai", { hang: true });
    const timedOut = await openai.chat.completions.create({ model: apiModel.openai, messages }, { timeout: 300 }).catch((error: unknown) => error);
    expect(timedOut).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(upstream.requests()[1]).toMatchObject({ aborted: true });
  });

  it("answers malformed JSON when asked, and 401 without an API key", async () => {
    upstream.enqueueFault("openai", { malformed: true });
    await expect(openai.chat.completions.create({ model: apiModel.openai, messages })).rejects.toThrow();
    const response = await fetch(`${upstream.baseUrls.openai}/chat/completions`, { method: "POST", body: JSON.stringify({ messages }) });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { type: "authentication_error" } });
  });
});

describe("pacing", () => {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

  /** Streams one completion; when each delta arrived, from the request's start (ms). */
  async function streamTimes(openai: OpenAI, options: { headers?: Record<string, string> } = {}) {
    const started = performance.now();
    const stream = await openai.chat.completions.create({ model: apiModel.openai, messages, stream: true }, options);
    const arrivals: number[] = [];
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) arrivals.push(performance.now() - started);
    return { firstToken: arrivals[0]!, gaps: arrivals.slice(1).map((at, i) => at - arrivals[i]!) };
  }

  it("paces a stream like a model when asked: the first token after firstTokenMs, then one every tokenMs", async () => {
    const upstream = await startAiUpstream({ port: 0, pacing: { firstTokenMs: 300, tokenMs: 40 } });
    try {
      const openai = new OpenAI({ apiKey: "local", baseURL: upstream.baseUrls.openai, maxRetries: 0 });
      const { firstToken, gaps } = await streamTimes(openai);
      expect(gaps.length).toBeGreaterThan(5);
      // Timers never fire early; the upper bounds leave room for a busy machine.
      expect(firstToken).toBeGreaterThanOrEqual(299);
      expect(firstToken).toBeLessThan(300 + 300);
      expect(median(gaps)).toBeGreaterThanOrEqual(35);
      expect(median(gaps)).toBeLessThan(40 + 40);

      // A request's own delays win over the pacing: here, none at all.
      const unpaced = await streamTimes(openai, { headers: { "x-upstream-fault": JSON.stringify({ firstTokenDelayMs: 0, tokenDelayMs: 0 }) } });
      expect(unpaced.firstToken).toBeLessThan(250);
      expect(median(unpaced.gaps)).toBeLessThan(20);
    } finally {
      await upstream.close();
    }
  });

  it("is instant without pacing, as tests and benches start it", async () => {
    const upstream = await startAiUpstream({ port: 0 });
    try {
      const openai = new OpenAI({ apiKey: "local", baseURL: upstream.baseUrls.openai, maxRetries: 0 });
      const { firstToken, gaps } = await streamTimes(openai);
      expect(firstToken).toBeLessThan(250);
      expect(median(gaps)).toBeLessThan(20);
    } finally {
      await upstream.close();
    }
  });
});
