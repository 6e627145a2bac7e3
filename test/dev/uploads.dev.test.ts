import { request as httpRequest, Agent } from "node:http";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { pngBytes } from "../images.ts";
import { useDevStack } from "./stack.ts";

type Answer = { status: number; body: string; reusedSocket: boolean };

/** One HTTP/1.1 client connection, kept alive and reused for every request, as a phone's is. */
function keepAliveClient(origin: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const base = new URL(origin);
  const send = (method: string, path: string, headers: Record<string, string | number> = {}, body?: Uint8Array) =>
    new Promise<Answer>((resolve, reject) => {
      const req = httpRequest({ host: base.hostname, port: base.port, method, path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), reusedSocket: req.reusedSocket }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

/** Rounds one user makes: each leaves an upload in no session, and a user may hold 30 (UPLOAD_MAX_PENDING). */
const ROUNDS_PER_USER = 25;

/**
 * Refused uploads between good ones, on one keep-alive connection: every refusal answers its
 * code, every valid PUT answers 201, the connection is reused throughout, and the stack stays up.
 * `tokens[i]` signs rounds i·25 to i·25+24.
 */
async function refusedThenValidRounds(url: string, tokens: string[], rounds: number) {
  const client = keepAliveClient(url);
  const image = pngBytes(32 * 1024);
  const notAnImage = new Uint8Array(image.length).fill(7);
  const statuses: string[] = [];
  let reused = 0;
  let requests = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const token = tokens[Math.floor(round / ROUNDS_PER_USER)];
      const grant = await client.send("GET", `/api/v1/sessions/upload-url?contentType=image/png&size=${image.length}`, { Authorization: `Bearer ${token}` });
      const signed = new URL(JSON.parse(grant.body).data.uploadUrl as string);
      const tampered = new URL(signed);
      const sig = tampered.searchParams.get("sig")!;
      tampered.searchParams.set("sig", `${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`);
      const put = (target: URL, body: Uint8Array, type = "image/png") =>
        client.send("PUT", target.pathname + target.search, { "Content-Type": type, "Content-Length": body.length }, body);
      const answers = [
        await put(tampered, image), // 403
        await put(signed, image, "image/jpeg"), // 415
        await put(signed, notAnImage), // 422
        await put(signed, image), // 201
        await put(signed, image), // 409
        await client.send("GET", "/api/v1/health"),
      ];
      statuses.push(answers.map((answer) => answer.status).join(","));
      requests += answers.length + 1;
      reused += [grant, ...answers].filter((answer) => answer.reusedSocket).length;
    }
  } finally {
    client.close();
  }
  return { statuses, reused, requests };
}

const EXPECTED = "403,415,422,201,409,200";

describe("refused uploads on a keep-alive connection (real wrangler dev)", () => {
  const fixture = useDevStack();

  it("answers 50 rounds of refused-then-valid uploads on one connection, and the stack stays up", async () => {
    const { stack } = fixture;
    const result = await refusedThenValidRounds(stack.url, [await stack.token("user_keepalive"), await stack.token("user_keepalive_2")], 50);
    expect(result.statuses).toEqual(Array(50).fill(EXPECTED));
    // Only the very first request opened the connection: no refusal made the client reconnect.
    expect(result.reused).toBe(result.requests - 1);
    expect((await fetch(`${stack.url}/api/v1/health`)).status).toBe(200);
    expect(stack.wrangler.running()).toBe(true);
  });
});

describe("refused uploads on the test pool's own wrangler", () => {
  // The pool pins an older wrangler, whose dev server exits when a proxied connection drops.
  // Reading every refused body keeps the connection whole, so even that version survives.
  const fixture = useDevStack({
    wranglerBin: fileURLToPath(new URL("../../node_modules/@cloudflare/vitest-pool-workers/node_modules/wrangler/bin/wrangler.js", import.meta.url)),
  });

  it("survives refused-then-valid rounds too", async () => {
    const { stack } = fixture;
    const result = await refusedThenValidRounds(stack.url, [await stack.token("user_keepalive_pool")], 15);
    expect(result.statuses).toEqual(Array(15).fill(EXPECTED));
    expect(stack.wrangler.running()).toBe(true);
  });
});
