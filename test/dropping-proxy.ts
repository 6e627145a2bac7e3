import { createServer } from "node:http";
import { listen, readBody, sendJson } from "../local/http.ts";

// Hop-by-hop and framing headers belong to each connection, not to the forwarded request.
const NOT_FORWARDED = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding"]);

/**
 * A front door to a real HTTP endpoint that loses requests on demand: each `dropNext()` makes the
 * next request's connection close before anything is forwarded, as a network hiccup loses it
 * (in the Worker: "Network connection lost"). Every other request is forwarded unchanged.
 */
export async function startDroppingProxy(target: string) {
  let drops = 0;
  const server = createServer((req, res) => {
    if (drops > 0) {
      drops -= 1;
      req.socket.destroy();
      return;
    }
    void (async () => {
      const headers = Object.entries(req.headers).flatMap(([name, value]) =>
        NOT_FORWARDED.has(name) || value === undefined ? [] : [[name, String(value)] as [string, string]],
      );
      const body = await readBody(req, 64 * 1024 * 1024, "request body too large");
      const answer = await fetch(target, { method: req.method, headers, body: req.method === "GET" ? undefined : body });
      const text = await answer.text();
      res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "text/plain", "content-length": Buffer.byteLength(text) });
      res.end(text);
    })().catch((error: unknown) => sendJson(res, 502, { message: `proxy: ${String(error)}` }));
  });
  const port = await listen(server, 0, "127.0.0.1", "dropping proxy");
  return {
    /** Same path as the target, on the proxy's port. */
    url: `http://127.0.0.1:${port}${new URL(target).pathname}`,
    dropNext: () => {
      drops += 1;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
