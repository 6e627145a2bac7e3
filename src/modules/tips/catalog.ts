import { sha256Hex } from "../../lib/hash";

/** One tip as written in content/tips/*.md, with the id the loader upserts it under. */
export interface TipSeed {
  id: string;
  phase: 1 | 2 | 3 | 4 | null;
  text: string;
}

const KEY = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * Parses a tip file: an optional `# heading`, then one `## key` (a lowercase slug) and a prose
 * body per tip. The phase comes from the file name (`phase-2-….md`); any other file holds general
 * tips. The id hashes file and key, so editing a tip's text updates its row while renaming its
 * key retires the old row. Throws on anything malformed: a broken file stops the loader instead
 * of deactivating half the tips.
 */
export async function parseTipFile(file: string, text: string): Promise<TipSeed[]> {
  const phaseMatch = /^phase-([1-4])\b/.exec(file);
  const phase = phaseMatch ? (Number(phaseMatch[1]) as 1 | 2 | 3 | 4) : null;
  const sections = text.split(/^## /m).slice(1);
  return Promise.all(
    sections.map(async (section, index) => {
      const [keyLine = "", ...rest] = section.split("\n");
      const key = keyLine.trim();
      if (!KEY.test(key)) throw new Error(`${file}: tip ${index + 1} needs a lowercase-slug key after "## ", not ${JSON.stringify(key)}`);
      const body = rest.join("\n").replace(/\s+/g, " ").trim();
      if (body.length < 20 || body.length > 400) throw new Error(`${file}: tip "${key}" must be 20–400 characters, not ${body.length}`);
      return { id: await tipId(file, key), phase, text: body };
    }),
  );
}

/** Every tip of a set of files; a key used twice in one file is an error, not a silent overwrite. */
export async function parseTipFiles(files: ReadonlyArray<{ name: string; text: string }>): Promise<TipSeed[]> {
  const seeds = (await Promise.all(files.map((file) => parseTipFile(file.name, file.text)))).flat();
  const seen = new Set<string>();
  for (const seed of seeds) {
    if (seen.has(seed.id)) throw new Error(`a tip key appears twice in one file (id ${seed.id})`);
    seen.add(seed.id);
  }
  return seeds;
}

/** `tip_` and 24 hex digits of SHA-256("file#key"): stable across runs and machines. */
export async function tipId(file: string, key: string): Promise<string> {
  return `tip_${(await sha256Hex(`${file}#${key}`)).slice(0, 24)}`;
}
