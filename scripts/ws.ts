// `npm run ws -- [--opener] <sessionId | generationId> [--user <clerkUserId> | --token <jwt>] [--auth ticket|frame] [--after-seq N] [--url http://127.0.0.1:8787]`
// Opens a session's (or, with --opener, a magic-opener generation's) WebSocket on the local stack, authenticates, and prints every frame as a
// JSON line until the socket closes. Without --token it mints one for --user (as `npm run token`), valid an hour. `--auth ticket` (the
// default) asks `POST …/ws-ticket` for a ticket and opens the URL it answers; `--auth frame` sends the token as the first frame instead.
// A given --token is not refreshed: the room closes the socket (4401 TOKEN_EXPIRED) when it expires.
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
    auth: { type: "string", default: "ticket" },
  },
});
const id = positionals[0];
if (!id) {
  console.error("usage: npm run ws -- <sessionId> [--user <clerkUserId> | --token <jwt>] [--auth ticket|frame] [--after-seq N] [--opener]");
  process.exit(1);
}

const token =
  values.token ??
  (await mintSessionToken((await ensureLocalClerkKeys(join(fileURLToPath(new URL("..", import.meta.url)), ".data", "clerk"))).privateJwk, {
    sub: values.user,
    ttlSeconds: 3600,
  }));
const roomPath = values.opener ? `/api/v1/magic-openers/generations/${id}` : `/api/v1/sessions/${id}`;
const afterSeq = values["after-seq"] === undefined ? undefined : Number(values["after-seq"]);

/** The socket URL: with a fresh ticket (and afterSeq) when `--auth ticket`, else the bare room URL. */
async function socketUrl(): Promise<URL> {
  if (values.auth === "frame") {
    const url = new URL(`${roomPath}/ws`, values.url);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url;
  }
  const response = await fetch(new URL(`${roomPath}/ws-ticket`, values.url), { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  const body = (await response.json()) as { success: boolean; data?: { url: string }; error?: { code: string } };
  if (!body.success || !body.data) {
    console.error(`no ticket: ${response.status} ${body.error?.code ?? ""}`);
    process.exit(1);
  }
  const url = new URL(body.data.url);
  if (afterSeq !== undefined) url.searchParams.set("afterSeq", String(afterSeq));
  return url;
}

const socket = new WebSocket(await socketUrl());
// React Native cannot send protocol pings, so the protocol has JSON ones; this client uses them too.
let heartbeat: NodeJS.Timeout | undefined;
socket.addEventListener("open", () => {
  if (values.auth === "frame") socket.send(JSON.stringify({ type: "authenticate", token, ...(afterSeq === undefined ? {} : { afterSeq }) }));
  heartbeat = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), 25_000);
});
socket.addEventListener("message", (event) => console.log(String(event.data)));
socket.addEventListener("close", (event) => {
  clearInterval(heartbeat);
  console.error(`closed: ${event.code} ${event.reason}`);
  process.exit(event.code === 1000 ? 0 : 1);
});
process.on("SIGINT", () => socket.close(1000, "bye"));
