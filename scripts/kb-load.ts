// `npm run kb:load`: embeds src/ai/knowledge/chunks/*.md and upserts them into knowledge_chunks.
// Defaults to the local stack (start `npm run dev` first); with DATABASE_URL and OPENAI_API_KEY
// set (and NEON_HTTP_ENDPOINT / OPENAI_BASE_URL unset) it loads a real Neon database.
// Runs under tsx because it shares the Worker's modules, whose imports carry no extensions.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createEmbedder } from "../src/ai/embeddings";
import { loadKnowledge } from "../src/ai/knowledge/load";
import { parseChunkFile } from "../src/ai/knowledge/parse";
import { createDatabase } from "../src/lib/db";
import { createLogger } from "../src/lib/logger";

const LOCAL = {
  DATABASE_URL: "postgresql://postgres:postgres@127.0.0.1:5433/postgres",
  NEON_HTTP_ENDPOINT: "http://127.0.0.1:5480/sql",
  OPENAI_API_KEY: "local-openai-key",
  OPENAI_BASE_URL: "http://127.0.0.1:8090/openai/v1",
};

const usingLocal = !process.env.DATABASE_URL;
const env = usingLocal ? { ...LOCAL, ...process.env } : process.env;
const openAiBase = env.OPENAI_API_KEY ? env.OPENAI_BASE_URL : LOCAL.OPENAI_BASE_URL;

const folder = fileURLToPath(new URL("../src/ai/knowledge/chunks", import.meta.url));
const files = readdirSync(folder).filter((file) => file.endsWith(".md")).sort();
const chunks = files.flatMap((file) => parseChunkFile(file, readFileSync(join(folder, file), "utf8")));
console.log(`[kb] ${chunks.length} chunks in ${files.length} files → ${usingLocal ? "the local stack" : "DATABASE_URL"}`);

const db = createDatabase({ DATABASE_URL: env.DATABASE_URL!, NEON_HTTP_ENDPOINT: env.NEON_HTTP_ENDPOINT || undefined });
const embedder = createEmbedder({ apiKey: env.OPENAI_API_KEY ?? LOCAL.OPENAI_API_KEY, baseURL: openAiBase || undefined, logger: createLogger({ level: "warn" }) });
try {
  const result = await loadKnowledge(db, embedder, chunks);
  console.log(`[kb] embedded ${result.embedded}, unchanged ${result.total - result.embedded}, deleted ${result.deleted}`);
} catch (error) {
  console.error(`[kb] failed: ${error instanceof Error ? error.message : String(error)} — is \`npm run dev\` running?`);
  process.exit(1);
}
