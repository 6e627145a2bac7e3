// What the built Worker is made of, per package: esbuild's metafile gives each input's exact
// bytes in the output; the source map says which output bytes came from which input, so each
// package's own bytes can be gzipped by themselves. Shared by the bundle bench and by anyone
// who wants to know where the bytes go.
import { dirname, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";

export interface PackageSize {
  /** An npm package name, or a folder of this project (src/modules, src/lib, …). */
  name: string;
  raw: number;
  /** Its output bytes compressed alone: an estimate, as gzip also shares context across packages. */
  gzip: number;
}

interface Metafile {
  outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
}

interface SourceMap {
  sources: string[];
  mappings: string;
}

/** `…/node_modules/@scope/name/x.js` → `@scope/name`; `src/modules/x/y.ts` → `src/modules`. */
export function packageOf(path: string): string {
  const at = path.lastIndexOf("node_modules/");
  if (at === -1) {
    const parts = path.split("/");
    return parts.length > 2 ? parts.slice(0, 2).join("/") : parts.join("/");
  }
  const [first = "", second = ""] = path.slice(at + "node_modules/".length).split("/");
  return first.startsWith("@") ? `${first}/${second}` : first;
}

/** Output text no source maps to: esbuild's glue, or a source no package could be found for. */
export const UNATTRIBUTED = "(unattributed)";

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64.length; i++) DIGIT[BASE64.charCodeAt(i)] = i;

/**
 * Calls `visit(line, column, source)` for each mapping of a source map (v3 VLQ), in output
 * order; `source` is -1 for a segment that maps to no input.
 */
function eachSegment(mappings: string, visit: (line: number, column: number, source: number) => void): void {
  let line = 0;
  let column = 0;
  let source = 0;
  let field = 0;
  let value = 0;
  let shift = 0;
  const fields: number[] = [];
  const flush = () => {
    if (fields.length === 0) return;
    column += fields[0]!;
    if (fields.length > 1) source += fields[1]!;
    visit(line, column, fields.length > 1 ? source : -1);
    fields.length = 0;
    field = 0;
  };
  for (let i = 0; i < mappings.length; i++) {
    const char = mappings.charCodeAt(i);
    if (char === 59 /* ; */) {
      flush();
      line++;
      column = 0;
    } else if (char === 44 /* , */) {
      flush();
    } else {
      const digit = DIGIT[char] ?? -1;
      if (digit === -1) throw new Error(`Invalid source map mapping character ${mappings[i]}`);
      value += (digit & 31) << shift;
      if (digit & 32) {
        shift += 5;
      } else {
        fields[field++] = value & 1 ? -(value >>> 1) : value >>> 1;
        value = 0;
        shift = 0;
      }
    }
  }
  flush();
}

/**
 * The package of each source map source. A package whose own source maps point outside it
 * (drizzle-orm's name `../src/x.ts` from its root, so `node_modules/src/x.ts`) is found by the
 * rest of the path among the metafile's inputs, when exactly one package has such a file.
 */
function attributeSources(sources: string[], inputs: string[]): (string | undefined)[] {
  const known = new Set(inputs.map(packageOf));
  const stem = (path: string) => path.replace(/\.[cm]?[jt]sx?$/, "");
  return sources.map((source) => {
    const name = packageOf(source);
    if (known.has(name)) return name;
    const rest = stem(source.slice(source.lastIndexOf("node_modules/") + "node_modules/".length).replace(/^src\//, ""));
    const owners = new Set(inputs.filter((input) => stem(input).endsWith(`/${rest}`)).map(packageOf));
    return owners.size === 1 ? [...owners][0] : undefined;
  });
}

/**
 * Per-package sizes of one built module, largest first. `raw` is esbuild's count for the
 * output file; `gzip` compresses the output text the source map attributes to the package.
 * Metafile inputs are relative to `root` (the project); source map sources to the map's folder.
 */
export function composition(options: { root: string; outputFile: string; code: string; map: SourceMap; meta: Metafile }): PackageSize[] {
  const { root, outputFile, code, map, meta } = options;
  const output = Object.entries(meta.outputs).find(([path]) => resolve(root, path) === outputFile)?.[1];
  if (!output) throw new Error(`The metafile has no output ${outputFile}`);
  const raw = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = packageOf(input);
    raw.set(name, (raw.get(name) ?? 0) + bytesInOutput);
  }

  const lines = code.split("\n");
  const pieces = new Map<string, string[]>();
  const sourcePackage = attributeSources(
    map.sources.map((source) => relative(root, resolve(dirname(outputFile), source))),
    Object.keys(output.inputs),
  );
  let open: { line: number; column: number; name: string } | undefined;
  const close = (line: number, column: number) => {
    if (!open) return;
    const text = line === open.line ? lines[open.line]!.slice(open.column, column) : lines[open.line]!.slice(open.column);
    const list = pieces.get(open.name) ?? [];
    list.push(text);
    pieces.set(open.name, list);
  };
  eachSegment(map.mappings, (line, column, source) => {
    close(line, column);
    open = { line, column, name: source === -1 ? UNATTRIBUTED : (sourcePackage[source] ?? UNATTRIBUTED) };
  });
  close(lines.length, 0);

  return [...raw]
    .map(([name, bytes]) => ({ name, raw: bytes, gzip: gzipSync(pieces.get(name)?.join("\n") ?? "", { level: 9 }).length }))
    .sort((a, b) => b.raw - a.raw);
}
