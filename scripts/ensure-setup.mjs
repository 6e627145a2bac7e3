#!/usr/bin/env node
// Makes a fresh clone runnable: installs npm dependencies (which bring the pinned Node 22)
// and Debian's redis-server when they are missing. Plain JavaScript on purpose: it runs
// under whatever Node the machine has (20 here) before the project's own Node 22 exists.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stampFile = join(root, "node_modules", ".charisma-install-stamp");

function say(line) {
  process.stderr.write(`[setup] ${line}\n`);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit", ...options });
  if (result.error) return { ok: false, reason: result.error.message };
  return { ok: result.status === 0, reason: `exit code ${result.status}` };
}

function lockfileHash() {
  return createHash("sha256")
    .update(readFileSync(join(root, "package-lock.json")))
    .digest("hex");
}

function ensureNpmDependencies() {
  const wanted = lockfileHash();
  const node22 = join(root, "node_modules", ".bin", "node");
  const current = existsSync(stampFile) ? readFileSync(stampFile, "utf8").trim() : "";
  if (current === wanted && existsSync(node22)) return;

  say("installing npm dependencies from package-lock.json (first run takes about a minute)…");
  const env = { ...process.env, npm_config_fund: "false", npm_config_audit: "false", npm_config_update_notifier: "false" };
  let result = run("npm", ["ci", "--no-audit", "--no-fund"], { env });
  if (!result.ok) {
    // `npm ci` has failed on optional platform packages missing from the registry; a plain
    // install resolves the same lockfile and tolerates that.
    say(`npm ci failed (${result.reason}); retrying with npm install`);
    result = run("npm", ["install", "--no-audit", "--no-fund"], { env });
  }
  if (!result.ok) {
    say(`npm dependencies could not be installed (${result.reason}). Check that the npm registry is reachable.`);
    process.exit(1);
  }
  if (!existsSync(node22)) {
    say("the pinned Node 22 (npm package `node`) did not install into node_modules/.bin/node.");
    process.exit(1);
  }
  writeFileSync(stampFile, `${wanted}\n`);
}

function findRedisServer() {
  for (const candidate of ["/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"]) {
    if (existsSync(candidate)) return candidate;
  }
  const which = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" });
  return which.status === 0 ? which.stdout.trim() : undefined;
}

function ensureRedisServer() {
  if (findRedisServer()) return;
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const hasApt = existsSync("/usr/bin/apt-get");
  const manual =
    "Install Redis 7 yourself (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`) " +
    "or put a `redis-server` binary on PATH, then run the command again.";
  if (!hasApt || !isRoot) {
    say(`redis-server is not installed and cannot be installed automatically (${hasApt ? "not root" : "no apt-get"}).`);
    say(manual);
    process.exit(1);
  }
  say("installing Debian's redis-server with apt-get…");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // policy-rc.d 101 keeps the package from starting a system-wide Redis: the stack runs its own.
  const policy = "/usr/sbin/policy-rc.d";
  const hadPolicy = existsSync(policy);
  if (!hadPolicy) writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  try {
    const update = run("apt-get", ["update", "-qq"], { env });
    const install = update.ok
      ? run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "redis-server"], { env })
      : update;
    if (!install.ok || !findRedisServer()) {
      say(`apt-get could not install redis-server (${install.reason}).`);
      say(manual);
      process.exit(1);
    }
  } finally {
    if (!hadPolicy) spawnSync("rm", ["-f", policy]);
  }
}

ensureNpmDependencies();
ensureRedisServer();
