import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface ControlActions {
  [action: string]: () => Promise<void>;
}

/**
 * Lets tests inside workerd act on the processes the global setup owns — e.g. stop Redis
 * for real and start it again. Loopback only, bearer-protected, alive only for the test run.
 */
export async function startControlServer(actions: ControlActions, token: string) {
  const server = createServer((req, res) => {
    const action = actions[(req.url ?? "").replace(/^\//, "")];
    if (req.method !== "POST" || req.headers.authorization !== `Bearer ${token}` || !action) {
      res.writeHead(404).end();
      return;
    }
    action().then(
      () => res.writeHead(204).end(),
      (error: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(String(error)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
