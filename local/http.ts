// Small pieces the stand-ins' HTTP servers share.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** An error that already knows the HTTP status it should answer with. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The whole body as text, or a 413 HttpError once it passes `maxBytes`. */
export async function readBody(req: IncomingMessage, maxBytes: number, tooLargeMessage: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, tooLargeMessage);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Listens and resolves the bound port; a busy port rejects with a message naming it and its role. */
export function listen(server: Server, port: number, host: string, role: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === "EADDRINUSE" ? `port ${port} (${role}) is already in use` : `${role}: ${error.message}`)),
    );
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/**
 * Idle keep-alive connections stay open longer than any client keeps them (workerd's fetch pool
 * keeps one about 5 s and ignores the server's Keep-Alive hint), so the client always closes
 * first. A shorter server timeout races the client: when a busy event loop fires overdue idle
 * timers together, sockets that already carry the Worker's next request are reset ("Network
 * connection lost"). Each stand-in's close() ends its connections itself.
 */
export function outlastClientKeepAlive(server: Server): void {
  server.keepAliveTimeout = 65_000;
}

/** A stand-in taken off the network and put back, as a dependency outage the Worker must ride out. */
export interface Outage {
  /** Refuses new connections and cuts every open one (requests in flight end without an answer). */
  stop(): Promise<void>;
  /** Serves again on the same port, with the state it had: a restart that kept its data. */
  start(): Promise<void>;
}

export function serverOutage(server: Server, port: number, host: string, role: string): Outage {
  return {
    stop: async () => {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    start: async () => {
      if (!server.listening) await listen(server, port, host, role);
    },
  };
}
