import { parseTipFiles } from "../src/modules/tips/catalog";
import { loadTips } from "../src/modules/tips/load";
import { testDb } from "./helpers";

// The shipped tip files, as `npm run tips:load` reads them.
const shipped = import.meta.glob("../content/tips/*.md", { query: "?raw", import: "default", eager: true }) as Record<string, string>;

/** The shipped tips, parsed as `npm run tips:load` parses them. */
export const shippedTipSeeds = () => parseTipFiles(Object.entries(shipped).map(([path, text]) => ({ name: path.split("/").pop()!, text })));

/** Loads the shipped tips into the test database. */
export async function loadShippedTips() {
  return loadTips(testDb(), await shippedTipSeeds());
}
