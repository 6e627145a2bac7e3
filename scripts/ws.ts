// `npm run ws -- [--opener] <sessionId | generationId> [--user <clerkUserId> | --token <jwt>] [--after-seq N] [--url http://127.0.0.1:8787]`
// Opens a session's (or, with --opener, a magic-opener generation's) WebSocket on the local stack, authenticates, and prints every frame as a
// JSON line until the socket closes. Without --token it mints one for --user (as `npm run token`).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureLocalClerkKeys } from "../local/clerk/keys.ts";
import { mintSessionToken } from "../local/clerk/token.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    user: { type: "string", default: "user_local_dev" },
    token: { type: "string" },
    "after-seq": { type: "string" },
    url: { type: "string", default: "http://127.0.0.1:8787" },
    opener: { type: "boolean", default: false },
  },
});
const id = positionals[0];
if (!id) {
  console.error("usage: npm run ws -- <sessionId> [--user <clerkUserId> | --token <jwt>] [--after-seq N] [--opener]");
  process.exit(1);
}

const token =
  values.token ??
  (await mintSessionToken((await ensureLocalClerkKeys(join(fileURLToPath(new URL("..", import.meta.url)), ".data", "clerk"))).privateJwk, {
    sub: values.user,
    ttlSeconds: 3600,
  }));
const url = new URL(values.opener ? `/api/v1/magic-openers/generations/${id}/ws` : `/api/v1/sessions/${id}/ws`, values.url);
url.protocol = url.protocol === "https:" ? "wss:" : "ws:";

const socket = new WebSocket(url);
// React Native cannot send protocol pings, so the protocol has JSON ones; this client uses them too.
let heartbeat: NodeJS.Timeout | undefined;
socket.addEventListener("open", () => {
  const afterSeq = values["after-seq"] === undefined ? undefined : Number(values["after-seq"]);
  socket.send(JSON.stringify({ type: "authenticate", token, ...(afterSeq === undefined ? {} : { afterSeq }) }));
  heartbeat = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), 25_000);
});
socket.addEventListener("message", (event) => console.log(String(event.data)));
socket.addEventListener("close", (event) => {
  clearInterval(heartbeat);
  console.error(`closed: ${event.code} ${event.reason}`);
  process.exit(event.code === 1000 ? 0 : 1);
});
process.on("SIGINT", () => socket.close(1000, "bye"));
