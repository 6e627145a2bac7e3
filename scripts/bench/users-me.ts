// Latency of an authenticated GET /api/v1/users/me against a running local stack
// (`npm run dev`): prints p50/p95/p99 over sequential requests after a warm-up.
// Usage: npm run bench:users-me [-- --requests 300 --url http://127.0.0.1:8787]
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureLocalClerkKeys } from "../../local/clerk/keys.ts";
import { mintSessionToken } from "../../local/clerk/token.ts";

const { values } = parseArgs({
  options: { requests: { type: "string", default: "300" }, url: { type: "string", default: "http://127.0.0.1:8787" } },
});
const total = Number(values.requests);
const keys = await ensureLocalClerkKeys(join(fileURLToPath(new URL("../..", import.meta.url)), ".data", "clerk"));
const url = `${values.url}/api/v1/users/me`;
// The local stack keeps its production-like limit (RATE_LIMIT_USER per window), so the
// benchmark spreads its requests over several users; each user's first (provisioning)
// request is warm-up, not a sample.
const PER_USER = 100;
const once = async (token: string) => {
  const started = performance.now();
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`GET /users/me answered ${response.status}; is \`npm run dev\` running?`);
  return performance.now() - started;
};
const samples: number[] = [];
for (let user = 0; samples.length < total; user++) {
  const token = await mintSessionToken(keys.privateJwk, { sub: `user_bench_${Date.now()}_${user}`, ttlSeconds: 3600 });
  for (let i = 0; i < 5; i++) await once(token);
  for (let i = 0; i < PER_USER - 5 && samples.length < total; i++) samples.push(await once(token));
}
samples.sort((a, b) => a - b);
const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!.toFixed(2);
console.log(`GET /api/v1/users/me × ${total}: p50 ${pct(50)} ms, p95 ${pct(95)} ms, p99 ${pct(99)} ms`);
