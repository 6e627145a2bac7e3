import { describe, expect, it } from "vitest";
import { seedSession } from "../../local/api-client.ts";
import { openDevSocket, useDevStack } from "./stack.ts";

// The room sets its timer at the socket's deadline whatever the value, so a short one shows
// the same as the 10 s default and keeps the file short.
const AUTH_TIMEOUT_MS = 3_000;

describe("a socket that never authenticates, under wrangler dev", () => {
  const fixture = useDevStack({ vars: { WS_AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS) } });

  /** Opens a socket that never sends a frame; when its 4401 came, from before the connect and from the open. */
  async function silentSocket(sessionId: string) {
    const { url } = fixture.stack;
    const connecting = performance.now();
    const socket = await openDevSocket(url, `/api/v1/sessions/${sessionId}/ws`);
    const opened = performance.now();
    const closeFrame = await socket.closeFrame(AUTH_TIMEOUT_MS + 5_000);
    const closed = await socket.closed(30_000);
    return { code: closed.code, sinceConnect: closeFrame - connecting, sinceOpen: closeFrame - opened, connectionEnded: closed.at - connecting };
  }

  it("closes it with 4401 at the deadline, on a fresh room and on a room with a live socket (which stays live)", async () => {
    const { url, token: mint } = fixture.stack;
    const token = await mint("user_dev_silent");
    const [fresh, busy] = [await seedSession(url, token, 1), await seedSession(url, token, 1)];
    const live = await openDevSocket(url, `/api/v1/sessions/${busy}/ws`);
    live.send({ type: "authenticate", token });
    await live.frame("authenticated");

    const results = await Promise.all([silentSocket(fresh), silentSocket(busy)]);
    for (const [room, result] of [["fresh room", results[0]], ["room with a live socket", results[1]]] as const) {
      console.log(
        `${room}: 4401 close frame ${result.sinceConnect.toFixed(0)} ms after connecting (deadline ${AUTH_TIMEOUT_MS} ms); ` +
          `connection ended after ${result.connectionEnded.toFixed(0)} ms`,
      );
      expect(result.code).toBe(4401);
      // The deadline runs from the room's accept, which lies between connecting and the open event.
      expect(result.sinceConnect).toBeGreaterThanOrEqual(AUTH_TIMEOUT_MS);
      expect(result.sinceOpen).toBeLessThanOrEqual(AUTH_TIMEOUT_MS + 1_000);
    }

    live.send({ type: "ping" });
    await live.frame("pong");
    expect(live.ws.readyState).toBe(WebSocket.OPEN);
    live.close();
  });
});
