// `npm run token -- <clerkUserId> [--email a@b.c] [--ttl seconds]`: prints a Clerk-shaped
// session token that the local stack (`npm run dev`) accepts.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureLocalClerkKeys } from "../local/clerk/keys.ts";
import { mintSessionToken } from "../local/clerk/token.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { email: { type: "string" }, ttl: { type: "string", default: "3600" } },
});
const sub = positionals[0];
const ttlSeconds = Number(values.ttl);
if (!sub || !Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
  console.error("usage: npm run token -- <clerkUserId> [--email you@example.com] [--ttl seconds]");
  process.exit(1);
}
const keys = await ensureLocalClerkKeys(join(fileURLToPath(new URL("..", import.meta.url)), ".data", "clerk"));
process.stdout.write(`${await mintSessionToken(keys.privateJwk, { sub, email: values.email, ttlSeconds })}\n`);
