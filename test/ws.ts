import { call } from "./helpers";
import { watchSocket } from "./socket";

export { type Frame, isRoomEvent } from "./socket";

/** A test client for the Worker's WebSocket routes in the pool: collects frames and the close event. */
export async function openSocket(path: string) {
  const response = await call(path, { headers: { Upgrade: "websocket" } });
  const ws = response.webSocket;
  if (response.status !== 101 || !ws) throw new Error(`no upgrade: ${response.status} ${await response.text()}`);
  ws.accept();
  return { ws, ...watchSocket(ws) };
}

export type TestSocket = Awaited<ReturnType<typeof openSocket>>;
