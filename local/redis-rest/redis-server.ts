// Supervises Debian's redis-server for the local stack and tests: loopback only, our own port
// and directory, never the system service.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { assertPortFree } from "../net.ts";

export interface RedisProcess {
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  running(): boolean;
}

export interface RedisServerOptions {
  /** A concrete free port; redis-server cannot report an OS-chosen one back to us. */
  port: number;
  /** undefined = no persistence; otherwise an append-only file in this directory. */
  dataDir?: string;
  /** Default: `redis-server` on PATH, then /usr/bin/redis-server, /usr/sbin/redis-server. */
  bin?: string;
  log?: (line: string) => void;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
// Lines redis-server prints on every start and stop, and its advice about the host's sysctl:
// not news about the stack. They still appear in the error if it dies during startup.
const ROUTINE =
  /Redis is starting|Redis version=|Configuration loaded|Server initialized|Received SIG|User requested shutdown|ready to exit|overcommit/i;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findBinary(explicit?: string): string {
  const onPath = (process.env.PATH ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, "redis-server"));
  const candidates = explicit ? [explicit] : [...onPath, "/usr/bin/redis-server", "/usr/sbin/redis-server"];
  const found = candidates.find(executable);
  if (found) return found;
  throw new Error(
    "redis-server not found: run `apt-get install redis-server` (Debian/Ubuntu, as root) or `brew install redis`" +
      (explicit ? ` — looked for ${explicit}` : " — looked on PATH, /usr/bin and /usr/sbin"),
  );
}

/** True once the server answers PING; false on refusal, LOADING or silence. */
function ping(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ port, host: "127.0.0.1" });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once("error", () => finish(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => finish(data.toString().startsWith("+PONG")));
  });
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export async function startRedisServer(opts: RedisServerOptions): Promise<RedisProcess> {
  const bin = findBinary(opts.bin);
  const log = opts.log ?? (() => {});
  const { port } = opts;
  const dataDir = opts.dataDir === undefined ? undefined : resolve(opts.dataDir);
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // Even without persistence redis-server needs a working directory: a private temporary one
  // keeps a stray SAVE from dropping dump.rdb into the project, or a later run from loading it.
  const workDir = dataDir ?? mkdtempSync(join(tmpdir(), "redis-ephemeral-"));
  const args = [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--protected-mode", "yes",
    "--daemonize", "no",
    "--loglevel", "warning",
    "--dir", workDir,
    "--save", "",
    ...(dataDir ? ["--appendonly", "yes", "--appendfsync", "everysec"] : ["--appendonly", "no"]),
  ];

  let child: ChildProcess | undefined;
  let stopping = false;
  let starting: Promise<void> | undefined;
  const alive = (proc: ChildProcess | undefined): proc is ChildProcess =>
    proc !== undefined && proc.exitCode === null && proc.signalCode === null;

  // SIGTERM, not SIGKILL: redis-server then flushes its append-only file even though we are gone.
  const onParentExit = () => {
    if (alive(child)) child.kill("SIGTERM");
    if (!dataDir) rmSync(workDir, { recursive: true, force: true });
  };
  process.on("exit", onParentExit);

  const spawnAndWait = async (): Promise<void> => {
    await assertPortFree(port, "redis");
    mkdirSync(workDir, { recursive: true }); // a stop() removed a temporary one
    const recent: string[] = [];
    const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    const collect = (data: Buffer) => {
      for (const line of data.toString().split("\n")) {
        if (!line.trim()) continue;
        recent.push(line);
        if (recent.length > 20) recent.shift();
        if (!ROUTINE.test(line)) log(line);
      }
    };
    proc.stdout?.on("data", collect);
    proc.stderr?.on("data", collect);

    let ready = false;
    const exited = new Promise<never>((_, reject) => {
      proc.once("error", (error) => reject(new Error(`redis-server could not be started (${bin}): ${error.message}`)));
      proc.once("exit", (code, signal) => {
        if (!ready) {
          const output = recent.join(" | ");
          reject(
            new Error(
              /Address already in use/i.test(output)
                ? `port ${port} (redis) is already in use`
                : `redis-server exited during startup (${signal ?? `code ${code}`}): ${output || "no output"}`,
            ),
          );
        } else if (!stopping) {
          log(`redis-server on port ${port} exited unexpectedly (${signal ?? `code ${code}`}); start() restarts it`);
        }
      });
    });
    exited.catch(() => {});

    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (await Promise.race([ping(port), exited])) {
        ready = true;
        return;
      }
      await Promise.race([sleep(50), exited]);
    }
    proc.kill("SIGKILL");
    throw new Error(`redis-server did not answer PING on port ${port} within ${START_TIMEOUT_MS / 1000} s`);
  };

  const start = (): Promise<void> => {
    if (alive(child) && !starting) return Promise.resolve();
    // Concurrent start() calls share one spawn instead of racing for the port.
    starting ??= spawnAndWait().finally(() => {
      starting = undefined;
    });
    return starting;
  };

  const stop = async (): Promise<void> => {
    await starting?.catch(() => {});
    const proc = child;
    if (!alive(proc)) return;
    stopping = true;
    const exited = new Promise<void>((done) => proc.once("exit", () => done()));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
    stopping = false;
    // A test runner may end this process without an exit event: clean up now, not only then.
    if (!dataDir) rmSync(workDir, { recursive: true, force: true });
  };

  try {
    await start();
  } catch (error) {
    process.off("exit", onParentExit);
    if (!dataDir) rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
  log(`redis-server on port ${port} ready (${dataDir ? `data in ${dataDir}` : "no persistence"})`);
  return { port, start, stop, running: () => alive(child) && !starting };
}
