// How the mobile app uses the generated types: a typed fetch (openapi-fetch) and a session's
// WebSocket. scripts/client.test.ts compiles this file against client/ with the settings of an
// Expo app (client/tsconfig.json), so a change to the API that breaks it fails the tests.
import createClient from "openapi-fetch";
import type { ClientFrame, ServerFrame, paths } from "./index";

export async function followLatestSession(baseUrl: string, token: string): Promise<WebSocket | undefined> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  // Every answer is an envelope: `data.data` on success, `error.error` ({code, message}) otherwise.
  const { data, error } = await api.GET("/api/v1/sessions", { params: { query: { limit: 20 } } });
  if (error) throw new Error(`${error.error.code}: ${error.error.message}`);
  const latest = data.data.items[0];
  if (!latest) return undefined;

  const socket = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/api/v1/sessions/${latest.id}/ws`);
  const send = (frame: ClientFrame) => socket.send(JSON.stringify(frame));
  // Room events carry a seq: authenticating again with the last one seen replays what was missed.
  let lastSeq = 0;
  const drafts: string[] = [];

  socket.onopen = () => send({ type: "authenticate", token, afterSeq: lastSeq });
  socket.onmessage = (message: MessageEvent<string>) => {
    const frame = JSON.parse(message.data) as ServerFrame;
    if (frame.type !== "pong" && frame.type !== "authenticated" && frame.type !== "error") lastSeq = frame.seq;
    switch (frame.type) {
      case "authenticated":
        console.log(`live after seq ${frame.seq}`);
        break;
      case "status":
        if (frame.status === "failed") console.warn("session failed", frame.error?.code);
        break;
      case "suggestion.started":
        drafts.length = 0;
        break;
      case "suggestion.delta":
        drafts[frame.index] = (drafts[frame.index] ?? "") + frame.delta;
        break;
      case "generation.restarted":
        drafts.length = 0;
        break;
      case "suggestion.completed":
        console.log(frame.suggestions.map((suggestion) => `${suggestion.rank + 1}. ${suggestion.text}`).join("\n"));
        break;
      case "error":
        console.warn(`socket error ${frame.code}: ${frame.message}`);
        break;
      default:
        // Other events (OCR, phase, openers …); a newer server may also add types: ignore them.
        break;
    }
  };
  return socket;
}

/** Mistakes the generated types refuse (each line must fail to compile, or the types went loose). */
export function mistakesTheTypesCatch(api: ReturnType<typeof createClient<paths>>, send: (frame: ClientFrame) => void, frame: ServerFrame) {
  // @ts-expect-error `limit` is a number
  void api.GET("/api/v1/sessions", { params: { query: { limit: "20" } } });
  // @ts-expect-error a session's path needs its id
  void api.GET("/api/v1/sessions/{id}", {});
  // @ts-expect-error `authenticate` needs the token
  send({ type: "authenticate" });
  // @ts-expect-error a delta has no `suggestions`: narrowing on `type` picks the frame's own fields
  if (frame.type === "suggestion.delta") console.log(frame.suggestions);
}
