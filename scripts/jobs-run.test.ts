import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startQStashStandIn } from "../local/qstash/server.ts";

const root = join(import.meta.dirname, "..");
const credentials = { token: "jobs-run-test-token", currentSigningKey: "sig_current", nextSigningKey: "sig_next" };
const PUBLIC_BASE_URL = "https://api.charisma.example";

describe("jobs:run", () => {
  let qstash: Awaited<ReturnType<typeof startQStashStandIn>>;
  beforeAll(async () => {
    qstash = await startQStashStandIn({ port: 0, ...credentials, delivery: "pull", log: () => {} });
  });
  afterAll(() => qstash.close());

  const run = (...args: string[]) =>
    promisify(execFile)(join(root, "node_modules", ".bin", "tsx"), [join(root, "scripts", "jobs-run.ts"), ...args], {
      cwd: root,
      env: { ...process.env, PUBLIC_BASE_URL, QSTASH_URL: qstash.url, QSTASH_TOKEN: credentials.token },
    }).then(
      ({ stdout }) => ({ code: 0, out: stdout }),
      (error: { code: number; stderr: string }) => ({ code: error.code, out: error.stderr }),
    );

  it("publishes a registered job to this Worker's /jobs/<name> with the payload given, each run its own message", async () => {
    const before = qstash.messages().length;
    expect(await run("openers", '{"generationId":"abc123"}')).toMatchObject({ code: 0 });
    expect(await run("openers", '{"generationId":"abc123"}')).toMatchObject({ code: 0 });
    const published = qstash.messages().slice(before);
    expect(published.map((message) => message.url)).toEqual([`${PUBLIC_BASE_URL}/jobs/openers`, `${PUBLIC_BASE_URL}/jobs/openers`]);
    expect(JSON.parse(Buffer.from(published[0]!.body, "base64").toString())).toEqual({ generationId: "abc123" });
  });

  it("refuses an unknown job, a payload that is not JSON, and one its schema refuses, publishing nothing", async () => {
    const before = qstash.messages().length;
    const unknown = await run("no-such-job");
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain("openers");
    expect(await run("openers", "{not json")).toMatchObject({ code: 2 });
    expect(await run("openers", '{"generationId":5}')).toMatchObject({ code: 2 });
    expect(qstash.messages().length).toBe(before);
  });
});
