import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { testConfig } from "../../../test/helpers";
import { models } from "../models";
import { outputJsonSchema } from "../prompts/data";
import { phaseOutputSchema } from "../prompts/phase.v2";
import type { GenerateRequest, ProviderEvent, ProviderName } from "../types";
import { createAdapters } from "./index";

const request: GenerateRequest = {
  system: "You are a dating coach. Reply with one short suggestion.",
  messages: [{ role: "user", content: "They wrote: 'I just got back from Lisbon!'" }],
  maxTokens: 200,
};
const apiModel: Record<ProviderName, string> = {
  openai: models["gpt-4o"].apiModel,
  anthropic: models["claude-sonnet"].apiModel,
  gemini: models["gemini-flash"].apiModel,
};

async function collect(events: AsyncIterable<ProviderEvent>) {
  const deltas: string[] = [];
  let usage: { inputTokens?: number; outputTokens?: number } | undefined;
  // Where the input count was known before the first token (the vendor reported it early).
  let inputBeforeFirstDelta: number | undefined;
  for await (const event of events) {
    if (event.type === "delta") deltas.push(event.text);
    else {
      usage = { ...usage, ...event.usage };
      if (deltas.length === 0) inputBeforeFirstDelta = usage.inputTokens;
    }
  }
  return { deltas, usage, inputBeforeFirstDelta };
}

describe.each(["openai", "anthropic", "gemini"] as const)("%s adapter (official SDK, inside workerd)", (provider) => {
  const adapter = createAdapters(testConfig())[provider]!;
  beforeEach(async () => {
    await fetch(`${env.TEST_AI_UPSTREAM_URL}/__control/reset`, { method: "POST" });
  });

  it("streams deltas and reports usage", async () => {
    const { deltas, usage } = await collect(adapter.stream(apiModel[provider], request, new AbortController().signal));
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.join("").length).toBeGreaterThan(20);
    expect(usage?.outputTokens).toBe(deltas.length);
    expect(usage?.inputTokens).toBeGreaterThan(0);
    const recorded = (await (await fetch(`${env.TEST_AI_UPSTREAM_URL}/__control/requests`)).json()) as Array<{ vendor: string; body: unknown }>;
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.vendor).toBe(provider);
    // The conversation travels as a message, apart from the instructions.
    expect(JSON.stringify(recorded[0]?.body)).toContain("Lisbon");
  });

  it("returns structured output that fits the requested schema", async () => {
    const { deltas } = await collect(
      adapter.stream(apiModel[provider], { ...request, jsonSchema: outputJsonSchema("phase", phaseOutputSchema) }, new AbortController().signal),
    );
    const parsed = phaseOutputSchema.parse(JSON.parse(deltas.join("")));
    expect(parsed.phase).toBeGreaterThanOrEqual(1);
    expect(parsed.phase).toBeLessThanOrEqual(4);
  });

  it("sends images as the vendor's image parts", async () => {
    const withImage: GenerateRequest = {
      ...request,
      messages: [{ role: "user", content: "Read this screenshot", images: [{ mimeType: "image/png", base64: "iVBORw0KGgo=" }] }],
    };
    await collect(adapter.stream(apiModel[provider], withImage, new AbortController().signal));
    const [recorded] = (await (await fetch(`${env.TEST_AI_UPSTREAM_URL}/__control/requests`)).json()) as Array<{ body: unknown }>;
    expect(JSON.stringify(recorded?.body)).toContain("iVBORw0KGgo=");
  });
});

// A call cancelled mid-stream is then charged the vendor's own input count, not an estimate.
it("anthropic adapter reports the input tokens when the stream starts, before any token", async () => {
  await fetch(`${env.TEST_AI_UPSTREAM_URL}/__control/reset`, { method: "POST" });
  const adapter = createAdapters(testConfig()).anthropic!;
  const { usage, inputBeforeFirstDelta } = await collect(adapter.stream(apiModel.anthropic, request, new AbortController().signal));
  expect(inputBeforeFirstDelta).toBeGreaterThan(0);
  expect(inputBeforeFirstDelta).toBe(usage?.inputTokens);
});
