#!/usr/bin/env node
// Copies Swagger UI's browser files from node_modules into public/, which wrangler serves as
// static assets at /api/v1/docs/assets/…: the docs page then works offline and from our own
// origin, and 1.9 MB of UI never enters the Worker bundle. Runs after every npm install and
// before wrangler builds. Plain JavaScript: it may run under the machine's Node 20.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "node_modules", "swagger-ui-dist");
const target = join(root, "public", "api", "v1", "docs", "assets", "swagger-ui-dist");

if (!existsSync(source)) {
  console.error("[docs-assets] swagger-ui-dist is not installed; run npm install");
  process.exit(1);
}
mkdirSync(target, { recursive: true });
for (const file of ["swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"]) {
  copyFileSync(join(source, file), join(target, file));
}
