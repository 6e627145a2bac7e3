// Supervises Debian's redis-server for the local stack and tests: loopback only, our own
// port and data directory, never the system service.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { connect } from "node:net";
import { assertPortFree } from "../net.ts";

export interface RedisProcess {
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  running(): boolean;
}

export interface RedisServerOptions {
  port: number;
  /** undefined = no persistence */
  dataDir?: string;
  bin?: string;
  log?: (line: string) => void;
}

const START_TIMEOUT_MS = 10_000;

function findBinary(explicit?: string): string {
  const candidates = explicit ? [explicit] : ["/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"];
  const path = (process.env.PATH ?? "").split(":").map((dir) => `${dir}/redis-server`);
  const found = [...candidates, ...(explicit ? [] : path)].find((candidate) => existsSync(candidate));
  if (!found) {
    throw new Error(
      "redis-server not found: run `npm run dev` or `npm test` as root to have it installed with apt-get, " +
        "or install it yourself (`apt-get install redis-server`, `brew install redis`)",
    );
  }
  return found;
}

/** True once the server answers PING on the port. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

export async function startRedisServer(opts: RedisServerOptions): Promise<RedisProcess> {
  const bin = findBinary(opts.bin);
  const log = opts.log ?? (() => {});
  const persistence = opts.dataDir
    ? ["--dir", opts.dataDir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "300 1"]
    : ["--save", "", "--appendonly", "no"];
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const args = [
    "--port", String(opts.port),
    "--bind", "127.0.0.1",
    "--protected-mode", "yes",
    "--daemonize", "no",
    "--loglevel", "warning",
    ...persistence,
  ];
  let child: ChildProcess | undefined;
  const killOnExit = () => child?.kill("SIGKILL");
  process.once("exit", killOnExit);

  const start = async (): Promise<void> => {
    if (child && child.exitCode === null) return;
    await assertPortFree(opts.port, "redis");
    const output: string[] = [];
    const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    const collect = (data: Buffer) => {
      for (const line of data.toString().split("\n")) {
        if (!line.trim()) continue;
        output.push(line);
        // Advice about the host's sysctl, not about the stack: it only adds alarm to the logs.
        if (line.includes("Memory overcommit")) continue;
        log(line);
      }
    };
    proc.stdout?.on("data", collect);
    proc.stderr?.on("data", collect);
    const exited = new Promise<never>((_, reject) => {
      proc.once("exit", (code) =>
        reject(new Error(`redis-server exited early (code ${code}): ${output.slice(-3).join(" | ")}`)),
      );
      proc.once("error", (error) => reject(new Error(`redis-server could not start: ${error.message}`)));
    });
    exited.catch(() => {});
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (await Promise.race([ping(opts.port), exited])) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    proc.kill("SIGKILL");
    throw new Error(`redis-server did not answer on port ${opts.port} within ${START_TIMEOUT_MS / 1000} s`);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  log(`redis-server ${opts.port} ready (${opts.dataDir ? `data in ${opts.dataDir}` : "no persistence"})`);
  return {
    port: opts.port,
    start,
    stop: async () => {
      await stop();
    },
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
  };
}
