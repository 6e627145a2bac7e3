import { sha256Hex } from "../../lib/hash";

/** One coaching chunk as written in src/ai/knowledge/chunks/phase-N-*.md. */
export interface KnowledgeChunk {
  source: string;
  phase: 1 | 2 | 3 | 4;
  title: string;
  tags: string[];
  content: string;
}

/**
 * Parses a chunk file: `# heading`, then `## Title`, a `tags: a, b` line and a prose body per
 * chunk. The phase comes from the file name (`phase-2-….md`). Throws on anything malformed, so a
 * broken file stops the loader instead of loading half a knowledge base.
 */
export function parseChunkFile(source: string, text: string): KnowledgeChunk[] {
  const phaseMatch = /phase-([1-4])/.exec(source);
  if (!phaseMatch) throw new Error(`${source}: file name must contain phase-1 … phase-4`);
  const phase = Number(phaseMatch[1]) as KnowledgeChunk["phase"];
  const sections = text.split(/^## /m).slice(1);
  return sections.map((section, index) => {
    const [titleLine = "", ...rest] = section.split("\n");
    const title = titleLine.trim();
    const tagsLine = rest.find((line) => line.trim() !== "") ?? "";
    const tagsMatch = /^tags:\s*(.+)$/i.exec(tagsLine.trim());
    if (!title || !tagsMatch) throw new Error(`${source}: chunk ${index + 1} needs a title and a "tags:" line`);
    const content = rest
      .slice(rest.indexOf(tagsLine) + 1)
      .join("\n")
      .trim();
    if (!content) throw new Error(`${source}: chunk "${title}" has no body`);
    const tags = tagsMatch[1]!.split(",").map((tag) => tag.trim().toLowerCase()).filter(Boolean);
    return { source, phase, title, tags, content };
  });
}

export function contentHash(chunk: Pick<KnowledgeChunk, "title" | "content">): Promise<string> {
  return sha256Hex(`${chunk.title}\n${chunk.content}`);
}
