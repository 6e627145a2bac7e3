import { beforeEach, describe, expect, it } from "vitest";
import { resetDatabase, testConfig, testDb } from "../../test/helpers";
import { createAiEngine } from "./engine";
import { createEmbedder } from "./embeddings";
import { loadKnowledge } from "./knowledge/load";
import { parseChunkFile } from "./knowledge/parse";

describe("createAiEngine", () => {
  beforeEach(resetDatabase);

  it("orders models from AI_PROVIDER_STRATEGY_PRIMARY and _FALLBACKS", async () => {
    const config = { ...testConfig(), AI_PROVIDER_STRATEGY_PRIMARY: "gemini-flash" as const, AI_PROVIDER_STRATEGY_FALLBACKS: ["gpt-4o" as const, "gemini-flash" as const] };
    const engine = createAiEngine(config, testDb());
    expect(engine.order).toEqual(["gemini-flash", "gpt-4o"]);
    const done = await engine.complete({ system: "s", messages: [{ role: "user", content: "hello" }], maxTokens: 50 }, { kind: "tip" });
    expect(done.model).toBe("gemini-flash");
  });

  it("retrieves coaching notes for a conversation", async () => {
    const config = testConfig();
    const chunks = parseChunkFile(
      "phase-4-date.md",
      "# P4\n\n## Propose a concrete coffee date\ntags: coffee, planning\n\nSuggest a coffee place and a day.\n\n## Confirm the day before\ntags: logistics\n\nSend a short confirmation message.\n",
    );
    await loadKnowledge(testDb(), createEmbedder({ apiKey: config.OPENAI_API_KEY!, baseURL: config.OPENAI_BASE_URL }), chunks);
    const notes = await createAiEngine(config, testDb()).retrieve("want to get coffee this week?", { phase: 4, k: 1 });
    expect(notes.map((note) => note.title)).toEqual(["Propose a concrete coffee date"]);
  });
});
