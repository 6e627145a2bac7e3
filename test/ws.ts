import { expect, onTestFinished } from "vitest";
import { serverFrameSchema } from "../src/realtime/frames";
import { call } from "./helpers";
import { watchSocket } from "./socket";

export { type Frame, isRoomEvent } from "./socket";

/**
 * A test client for the Worker's WebSocket routes in the pool: collects frames and the close
 * event. When the test ends, every frame it received must be one that src/realtime/frames.ts
 * declares, so each test that watches a socket also checks the frames' shapes.
 */
export async function openSocket(path: string) {
  const response = await call(path, { headers: { Upgrade: "websocket" } });
  const ws = response.webSocket;
  if (response.status !== 101 || !ws) throw new Error(`no upgrade: ${response.status} ${await response.text()}`);
  ws.accept();
  const socket = watchSocket(ws);
  onTestFinished(() => {
    const undeclared = socket.frames.flatMap((frame) => {
      const parsed = serverFrameSchema.safeParse(frame);
      return parsed.success ? [] : [{ frame, issues: parsed.error.issues }];
    });
    expect(undeclared).toEqual([]);
  });
  return { ws, ...socket };
}

export type TestSocket = Awaited<ReturnType<typeof openSocket>>;
