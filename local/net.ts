import { createServer } from "node:net";

/** Resolves when `port` on `host` can be bound; rejects naming the port and its role otherwise. */
export function assertPortFree(port: number, role: string, host = "127.0.0.1"): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          error.code === "EADDRINUSE"
            ? `port ${port} (${role}) is already in use — stop what holds it (\`ss -ltnp 'sport = :${port}'\`) or choose another port`
            : `port ${port} (${role}) cannot be used: ${error.message}`,
        ),
      );
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** A port the OS just handed out, free at the time of asking. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
