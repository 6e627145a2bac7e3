// A local upstream that speaks the wire protocols of OpenAI (chat completions, embeddings),
// Anthropic (messages) and Gemini (generateContent, streamGenerateContent, embeddings), so the
// official SDKs run unchanged against it with only their base URL changed. Output is
// deterministic; tests inject faults per request and read back what was received.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { models } from "../../src/ai/models.ts";
import { HttpError, listen, type Outage, outlastClientKeepAlive, readBody, sendJson } from "../http.ts";
import { countTokens, embed, generateTokens, languageHints, seededRandom, valueForSchema } from "./generate.ts";
import type { Fault, RecordedRequest, Vendor } from "./types.ts";

export type { Fault, RecordedRequest, Vendor } from "./types.ts";

export interface AiUpstream {
  url: string;
  baseUrls: { openai: string; anthropic: string; gemini: string };
  requests(): RecordedRequest[];
  /** Queues a fault for the next request of `vendor` whose body contains `match` (if given). */
  enqueueFault(vendor: Vendor | "any", fault: Fault, match?: string): void;
  reset(): void;
  /**
   * One vendor down and up again, as if its API were unreachable: its connections, in flight or
   * new, are cut without an answer. The other vendors keep serving.
   */
  outage(vendor: Vendor): Outage;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 20 * 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Json = Record<string, any>;
/** How an answer is paced: a request's own delays (its fault) over the upstream's default pacing. */
type Timing = { firstTokenMs: number; tokenMs: number };
type Exchange = { req: IncomingMessage; res: ServerResponse; body: Json; record: RecordedRequest; fault: Fault; timing: Timing };

/**
 * How fast the upstream answers when a request asks for nothing else: the delay before the first
 * token (or before a whole non-streamed answer), and between streamed tokens. Instant by
 * default, as tests and benches want; `npm run dev` paces like a real model.
 */
export interface AiPacing {
  firstTokenMs: number;
  tokenMs: number;
}

/** A request that names no model gets the vendor's first model in the Worker's list. */
const defaultModel = (vendor: Vendor) => Object.values(models).find((model) => model.provider === vendor)!.apiModel;

function vendorError(vendor: Vendor, status: number, message: string) {
  const kind = status === 429 ? "rate_limit" : status === 401 ? "authentication" : status >= 500 ? "server" : "invalid_request";
  if (vendor === "openai") {
    return { error: { message, type: kind === "server" ? "server_error" : `${kind}_error`, code: kind === "rate_limit" ? "rate_limit_exceeded" : null } };
  }
  if (vendor === "anthropic") {
    const type = status === 529 || status === 503 ? "overloaded_error" : kind === "server" ? "api_error" : `${kind}_error`;
    return { type: "error", error: { type, message } };
  }
  const statusName = { rate_limit: "RESOURCE_EXHAUSTED", authentication: "UNAUTHENTICATED", server: "INTERNAL", invalid_request: "INVALID_ARGUMENT" }[kind];
  return { error: { code: status, message, status: status === 503 ? "UNAVAILABLE" : statusName } };
}

function sse(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.flushHeaders();
}

/**
 * Streams `tokens` through `write`, honouring delays and cuts, and stops early when the client
 * disconnects. Resolves true when every token went out and the caller should finish the stream.
 */
async function streamTokens(x: Exchange, tokens: string[], write: (token: string, index: number) => void): Promise<boolean> {
  if (x.timing.firstTokenMs) await sleep(x.timing.firstTokenMs);
  for (let i = 0; i < tokens.length; i++) {
    if (x.record.aborted) return false;
    if (x.fault.cutAfterTokens !== undefined && i >= x.fault.cutAfterTokens) {
      // Let what was written reach the client, then drop the connection mid-stream.
      await new Promise<void>((resolve) => x.res.write("", () => resolve()));
      x.res.socket?.destroy();
      return false;
    }
    if (i > 0 && x.timing.tokenMs) await sleep(x.timing.tokenMs);
    if (x.record.aborted) return false;
    write(tokens[i]!, i);
    x.record.streamed.push({ text: tokens[i]!, at: performance.timeOrigin + performance.now() });
  }
  return true;
}

/** Structured answers stream as JSON text in small pieces, the way vendors chunk them. */
function chunked(text: string, size = 12): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [""];
}

// ---- OpenAI -----------------------------------------------------------------------------

async function openaiChat(x: Exchange): Promise<void> {
  const { body } = x;
  const model = String(body.model ?? defaultModel("openai"));
  const seed = `${model}:${JSON.stringify(body.messages ?? [])}`;
  const format = body.response_format as Json | undefined;
  const structured =
    format?.type === "json_schema"
      ? JSON.stringify(valueForSchema(format.json_schema?.schema, seededRandom(seed), languageHints(seed)))
      : format?.type === "json_object"
        ? JSON.stringify({ text: generateTokens(seed, 24, languageHints(seed).output).join("") })
        : undefined;
  const tokens =
    x.fault.output !== undefined
      ? chunked(x.fault.output)
      : structured !== undefined
        ? chunked(structured)
        : generateTokens(seed, body.max_tokens ?? body.max_completion_tokens, languageHints(seed).output);
  const usage = {
    prompt_tokens: countTokens(JSON.stringify(body.messages ?? [])),
    completion_tokens: tokens.length,
    total_tokens: 0,
  };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  const id = `chatcmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);

  if (!body.stream) {
    if (x.timing.firstTokenMs) await sleep(x.timing.firstTokenMs);
    const message = { role: "assistant", content: tokens.join(""), refusal: null };
    sendJson(x.res, 200, {
      id,
      object: "chat.completion",
      created,
      model,
      choices: [{ index: 0, message, finish_reason: "stop", logprobs: null }],
      usage,
    });
    return;
  }
  sse(x.res);
  const chunk = (choices: unknown[], extra: Json = {}) =>
    x.res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`);
  const done = await streamTokens(x, tokens, (token, i) =>
    chunk([{ index: 0, delta: i === 0 ? { role: "assistant", content: token } : { content: token }, finish_reason: null }]),
  );
  if (!done) return;
  chunk([{ index: 0, delta: {}, finish_reason: "stop" }]);
  if (body.stream_options?.include_usage) chunk([], { usage });
  x.res.end("data: [DONE]\n\n");
}

function openaiEmbeddings(x: Exchange): void {
  const inputs: string[] = Array.isArray(x.body.input) ? x.body.input.map(String) : [String(x.body.input ?? "")];
  const dimensions = Number(x.body.dimensions ?? 1536);
  const base64 = x.body.encoding_format === "base64";
  const data = inputs.map((input, index) => {
    const vector = embed(input, dimensions);
    return {
      object: "embedding",
      index,
      embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector,
    };
  });
  const tokens = inputs.reduce((sum, input) => sum + countTokens(input), 0);
  sendJson(x.res, 200, { object: "list", data, model: x.body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

// ---- Anthropic --------------------------------------------------------------------------

async function anthropicMessages(x: Exchange): Promise<void> {
  const { body } = x;
  const model = String(body.model ?? defaultModel("anthropic"));
  const seed = `${model}:${JSON.stringify(body.system ?? "")}:${JSON.stringify(body.messages ?? [])}`;
  const forcedTool =
    body.tool_choice?.type === "tool"
      ? (body.tools as Json[] | undefined)?.find((tool) => tool.name === body.tool_choice.name)
      : undefined;
  const toolInput = forcedTool ? (x.fault.output ?? JSON.stringify(valueForSchema(forcedTool.input_schema, seededRandom(seed), languageHints(seed)))) : undefined;
  const tokens =
    toolInput !== undefined ? chunked(toolInput) : x.fault.output !== undefined ? chunked(x.fault.output) : generateTokens(seed, body.max_tokens, languageHints(seed).output);
  const inputTokens = countTokens(JSON.stringify([body.system ?? "", body.messages ?? []]));
  const id = `msg_${randomUUID().replaceAll("-", "")}`;
  const stopReason = forcedTool ? "tool_use" : "end_turn";
  const block = forcedTool
    ? { type: "tool_use", id: `toolu_${randomUUID().replaceAll("-", "")}`, name: forcedTool.name, input: {} }
    : { type: "text", text: "" };

  if (!body.stream) {
    if (x.timing.firstTokenMs) await sleep(x.timing.firstTokenMs);
    const content = forcedTool ? [{ ...block, input: JSON.parse(toolInput!) }] : [{ type: "text", text: tokens.join("") }];
    sendJson(x.res, 200, {
      id,
      type: "message",
      role: "assistant",
      model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: tokens.length },
    });
    return;
  }
  sse(x.res);
  const event = (type: string, data: Json) => x.res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  event("message_start", {
    message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: 1 } },
  });
  event("content_block_start", { index: 0, content_block: block });
  event("ping", {});
  const done = await streamTokens(x, tokens, (token) =>
    event("content_block_delta", {
      index: 0,
      delta: forcedTool ? { type: "input_json_delta", partial_json: token } : { type: "text_delta", text: token },
    }),
  );
  if (!done) return;
  event("content_block_stop", { index: 0 });
  event("message_delta", { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: tokens.length } });
  event("message_stop", {});
  x.res.end();
}

// ---- Gemini -----------------------------------------------------------------------------

function geminiText(body: Json): { seed: string; structured: string | undefined } {
  const seed = JSON.stringify([body.systemInstruction ?? null, body.contents ?? []]);
  const config = (body.generationConfig ?? {}) as Json;
  const schema = config.responseJsonSchema ?? config.responseSchema;
  const structured =
    config.responseMimeType === "application/json"
      ? JSON.stringify(schema ? valueForSchema(schema, seededRandom(seed), languageHints(seed)) : { text: generateTokens(seed, 24, languageHints(seed).output).join("") })
      : undefined;
  return { seed, structured };
}

async function geminiGenerate(x: Exchange, model: string, stream: boolean): Promise<void> {
  const { seed, structured } = geminiText(x.body);
  const tokens =
    x.fault.output !== undefined
      ? chunked(x.fault.output)
      : structured !== undefined
        ? chunked(structured)
        : generateTokens(`${model}:${seed}`, x.body.generationConfig?.maxOutputTokens, languageHints(seed).output);
  const usageMetadata = {
    promptTokenCount: countTokens(JSON.stringify(x.body.contents ?? [])),
    candidatesTokenCount: tokens.length,
    totalTokenCount: 0,
  };
  usageMetadata.totalTokenCount = usageMetadata.promptTokenCount + usageMetadata.candidatesTokenCount;
  const candidate = (text: string, finished: boolean) => ({
    content: { parts: [{ text }], role: "model" },
    index: 0,
    ...(finished ? { finishReason: "STOP" } : {}),
  });

  if (!stream) {
    if (x.timing.firstTokenMs) await sleep(x.timing.firstTokenMs);
    sendJson(x.res, 200, { candidates: [candidate(tokens.join(""), true)], usageMetadata, modelVersion: model });
    return;
  }
  sse(x.res);
  const last = tokens.length - 1;
  const done = await streamTokens(x, tokens, (token, i) => {
    const chunk = { candidates: [candidate(token, i === last)], modelVersion: model, ...(i === last ? { usageMetadata } : {}) };
    x.res.write(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
  });
  if (done) x.res.end();
}

function geminiEmbed(x: Exchange, batch: boolean): void {
  const textOf = (content: Json | undefined) => ((content?.parts ?? []) as Json[]).map((part) => part.text ?? "").join(" ");
  const dimensions = (request: Json) => Number(request.outputDimensionality ?? request.config?.outputDimensionality ?? 1536);
  if (batch) {
    const requests = (x.body.requests ?? []) as Json[];
    sendJson(x.res, 200, { embeddings: requests.map((request) => ({ values: embed(textOf(request.content), dimensions(request)) })) });
    return;
  }
  sendJson(x.res, 200, { embedding: { values: embed(textOf(x.body.content), dimensions(x.body)) } });
}

// ---- routing ----------------------------------------------------------------------------

function route(vendor: Vendor, path: string): ((x: Exchange) => Promise<void> | void) | undefined {
  if (vendor === "openai") {
    if (path === "/v1/chat/completions") return openaiChat;
    if (path === "/v1/embeddings") return openaiEmbeddings;
    return undefined;
  }
  if (vendor === "anthropic") return path === "/v1/messages" ? anthropicMessages : undefined;
  const match = /^\/v1(?:beta)?\/models\/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$/.exec(path);
  if (!match) return undefined;
  const [, model = "", method] = match;
  if (method === "generateContent") return (x) => geminiGenerate(x, model, false);
  if (method === "streamGenerateContent") return (x) => geminiGenerate(x, model, true);
  return (x) => geminiEmbed(x, method === "batchEmbedContents");
}

function hasCredentials(vendor: Vendor, req: IncomingMessage): boolean {
  if (vendor === "openai") return /^Bearer \S+/.test(req.headers.authorization ?? "");
  // The Anthropic SDK sends its key as x-api-key or, in recent versions, as a bearer token.
  if (vendor === "anthropic") return Boolean(req.headers["x-api-key"]) || /^Bearer \S+/.test(req.headers.authorization ?? "");
  return Boolean(req.headers["x-goog-api-key"]) || new URL(req.url ?? "/", "http://x").searchParams.has("key");
}

export async function startAiUpstream(opts: {
  port: number;
  host?: string;
  /** Default pacing of every answer; a request's fault delays win over it. Instant without. */
  pacing?: AiPacing;
  log?: (line: string) => void;
}): Promise<AiUpstream> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => {});
  const pacing = opts.pacing ?? { firstTokenMs: 0, tokenMs: 0 };
  const recorded: RecordedRequest[] = [];
  // A queued fault applies to the next request of its vendor whose body contains `match` (if set).
  const queued: Array<{ vendor: Vendor | "any"; fault: Fault; match?: string }> = [];
  const down = new Set<Vendor>();
  const inFlight = new Map<Vendor, Set<IncomingMessage>>();

  const takeFault = (vendor: Vendor, req: IncomingMessage, body: Json): Fault | undefined => {
    const header = req.headers["x-upstream-fault"];
    if (typeof header === "string") {
      try {
        return JSON.parse(header) as Fault;
      } catch {
        throw new HttpError(400, "x-upstream-fault must be JSON");
      }
    }
    const text = JSON.stringify(body);
    const index = queued.findIndex(
      (entry) => (entry.vendor === vendor || entry.vendor === "any") && (entry.match === undefined || text.includes(entry.match)),
    );
    return index === -1 ? undefined : queued.splice(index, 1)[0]!.fault;
  };

  const control = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (req.method === "GET" && path === "/__control/requests") return sendJson(res, 200, recorded);
    if (req.method === "POST" && path === "/__control/reset") {
      recorded.length = 0;
      queued.length = 0;
      return sendJson(res, 200, { ok: true });
    }
    if (req.method === "POST" && path === "/__control/faults") {
      const { vendor = "any", fault, match, times = 1 } = JSON.parse(await readBody(req, 64 * 1024, "too large")) as {
        vendor?: Vendor | "any";
        fault: Fault;
        match?: string;
        times?: number;
      };
      for (let i = 0; i < times; i++) queued.push({ vendor, fault, match });
      return sendJson(res, 200, { queued: queued.length });
    }
    throw new HttpError(404, "unknown control path");
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname.startsWith("/__control/")) return control(req, res, url.pathname);
    const [, vendorName = "", ...rest] = url.pathname.split("/");
    const vendor = (["openai", "anthropic", "gemini"] as const).find((name) => name === vendorName);
    if (!vendor) throw new HttpError(404, "unknown vendor");
    if (down.has(vendor)) return void req.socket.destroy();
    const open = inFlight.get(vendor) ?? inFlight.set(vendor, new Set()).get(vendor)!;
    open.add(req);
    res.once("close", () => open.delete(req));
    const path = `/${rest.join("/")}`;
    const handler = route(vendor, path);
    if (!handler || req.method !== "POST") {
      return sendJson(res, 404, vendorError(vendor, 404, `no such endpoint: ${req.method} ${path}`));
    }
    let body: Json;
    try {
      body = JSON.parse(await readBody(req, MAX_BODY_BYTES, "request too large")) as Json;
    } catch {
      return sendJson(res, 400, vendorError(vendor, 400, "request body is not valid JSON"));
    }
    const fault = takeFault(vendor, req, body) ?? {};
    const record: RecordedRequest = { id: randomUUID(), vendor, path, body, fault: Object.keys(fault).length ? fault : undefined, aborted: false, completed: false, streamed: [] };
    recorded.push(record);
    res.on("close", () => {
      if (!res.writableFinished) record.aborted = true;
    });
    res.on("finish", () => {
      record.completed = true;
    });

    if (!hasCredentials(vendor, req)) return sendJson(res, 401, vendorError(vendor, 401, "missing API key"));
    if (fault.hang) return; // never answers; the client's timeout or abort ends it
    if (fault.status) {
      if (fault.firstTokenDelayMs) await sleep(fault.firstTokenDelayMs);
      if (fault.retryAfterSeconds !== undefined) res.setHeader("retry-after", String(fault.retryAfterSeconds));
      return sendJson(res, fault.status, vendorError(vendor, fault.status, `injected ${fault.status}`));
    }
    if (fault.malformed) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"choices": [ this is not json');
      return;
    }
    const timing = { firstTokenMs: fault.firstTokenDelayMs ?? pacing.firstTokenMs, tokenMs: fault.tokenDelayMs ?? pacing.tokenMs };
    await handler({ req, res, body, record, fault, timing });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      if (status === 500) log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
      if (!res.headersSent) sendJson(res, status, { error: { message: error instanceof Error ? error.message : "internal error" } });
      else res.destroy();
    });
  });
  outlastClientKeepAlive(server);
  const port = await listen(server, opts.port, host, "ai-upstream");
  const url = `http://${host}:${port}`;
  const paced = pacing.firstTokenMs || pacing.tokenMs ? `, first token after ${pacing.firstTokenMs} ms, then ${pacing.tokenMs} ms per token` : "";
  log(`AI upstream on ${url} (openai, anthropic, gemini${paced})`);
  return {
    url,
    baseUrls: { openai: `${url}/openai/v1`, anthropic: `${url}/anthropic`, gemini: `${url}/gemini` },
    requests: () => recorded,
    enqueueFault: (vendor, fault, match) => void queued.push({ vendor, fault, match }),
    reset: () => {
      recorded.length = 0;
      queued.length = 0;
    },
    outage: (vendor) => ({
      stop: async () => {
        down.add(vendor);
        for (const req of inFlight.get(vendor) ?? []) req.socket.destroy();
      },
      start: async () => void down.delete(vendor),
    }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8090" } } });
  const log = (line: string) => console.log(`[ai] ${line}`);
  const upstream = await startAiUpstream({ port: Number(values.port), log });
  const stop = () => void upstream.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
