import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { expectJson } from "../../local/api-client.ts";
import { useDevStack } from "./stack.ts";

/** Pids pgrep finds with these arguments. */
function pgrep(...args: string[]): number[] {
  try {
    return execFileSync("pgrep", args, { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}
const groupMembers = (pgid: number) => pgrep("-g", String(pgid));
const redisServers = (port: number) => pgrep("-f", `redis-server 127.0.0.1:${port}`);

describe("the dev stack (real wrangler dev)", () => {
  const fixture = useDevStack();

  it("serves the Worker through wrangler dev, which keeps running", async () => {
    const { stack } = fixture;
    const health = await expectJson<{ data: { status: string; environment: string } }>(
      await fetch(`${stack.url}/api/v1/health`),
      200,
      "GET /api/v1/health",
    );
    expect(health.data).toMatchObject({ status: "ok", environment: "development" });
    expect(await stack.ready(30_000)).toBe(true);
    const me = await fetch(`${stack.url}/api/v1/users/me`, { headers: { Authorization: `Bearer ${await stack.token("user_dev_smoke")}` } });
    expect(me.status).toBe(200);
    expect(stack.wrangler.running()).toBe(true);
    // workerd runs in wrangler's process group.
    expect(pgrep("-g", String(stack.wrangler.pid), "workerd")).not.toEqual([]);
    expect(redisServers(stack.redis.port)).toHaveLength(1);
  });

  it("stops every process it started: wrangler's whole group, workerd included, and redis-server", async () => {
    const { stack } = fixture;
    expect(groupMembers(stack.wrangler.pid)).toContain(stack.wrangler.pid);
    await stack.stop();
    expect(groupMembers(stack.wrangler.pid)).toEqual([]);
    expect(redisServers(stack.redis.port)).toEqual([]);
    expect(stack.wrangler.running()).toBe(false);
    await expect(fetch(`${stack.url}/api/v1/health`)).rejects.toThrow();
  });
});
