import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { clerkId, mintToken, resetDatabase, testConfig, testDb } from "../../test/helpers";
import { AiError } from "../ai/strategy";
import { createApp } from "../app";
import { AppError } from "./errors";
import { createLogger, redact } from "./logger";
import { createRedis } from "./redis";

describe("logger", () => {
  afterEach(() => vi.restoreAllMocks());

  it("writes one JSON line with level, message, base and call fields", () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
    createLogger({ level: "info", base: { requestId: "r1" } }).child({ userId: "u1" }).info("request", { status: 200 });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", msg: "request", requestId: "r1", userId: "u1", status: 200 });
  });

  it("drops lines below the configured level", () => {
    const spy = vi.spyOn(console, "log").mockImplementation(() => {});
    createLogger({ level: "warn" }).info("quiet");
    expect(spy).not.toHaveBeenCalled();
  });

  it("logs an error as its class, never a library's message or stack", () => {
    const error = Object.assign(new TypeError("cannot read 'meet me at nine'"), { status: 502, retryable: true, detail: "meet me at nine" });
    expect(redact({ error })).toEqual({ error: { name: "TypeError", status: 502, retryable: true } });
  });

  it("keeps the code and message of our own errors, and describes their causes by class", () => {
    const snippet = new SyntaxError('Unexpected token \'m\', "meet me at"... is not valid JSON');
    const error = new AppError("INTERNAL_ERROR", { cause: new AiError("AI_INVALID_OUTPUT", "the model's answer was not JSON", { cause: snippet }) });
    expect(redact({ error })).toEqual({
      error: {
        name: "AppError",
        code: "INTERNAL_ERROR",
        message: "An unexpected error occurred",
        cause: { name: "AiError", code: "AI_INVALID_OUTPUT", message: "the model's answer was not JSON", cause: { name: "SyntaxError" } },
      },
    });
    // A cause that is not an error (zod issues, a response body) is only named.
    const issues = [{ path: ["meet me at nine"], message: "meet me at nine" }];
    expect(redact({ error: new AiError("AI_INVALID_OUTPUT", "the model's answer did not fit the schema", { cause: issues }) })).toEqual({
      error: { name: "AiError", code: "AI_INVALID_OUTPUT", message: "the model's answer did not fit the schema", cause: { name: "Array" } },
    });
  });

  it("redacts tokens, emails, message text and image keys, however deep", () => {
    const out = redact({
      authorization: "Bearer abc.def.ghi",
      user: { email: "a@b.co", id: "u1" },
      messages: [{ text: "hey there" }],
      r2Key: "users/u1/img.png",
      note: "sent to someone@example.com with Bearer xyz123",
      count: 3,
    });
    expect(out).toEqual({
      authorization: "[redacted]",
      user: { email: "[redacted]", id: "u1" },
      messages: "[redacted]",
      r2Key: "[redacted]",
      note: "sent to [redacted] with Bearer [redacted]",
      count: 3,
    });
  });
});

describe("errors from real clients", () => {
  const chat = "meet me at the secret garden at nine";
  afterEach(() => vi.restoreAllMocks());

  function logged(fields: Record<string, unknown>): string {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => void lines.push(line));
    createLogger().error("it failed", fields);
    expect(lines).toHaveLength(1);
    return lines[0]!;
  }

  it("a Redis command error: @upstash/redis puts the whole command, chat text included, in its message", async () => {
    // An OCR cache write that Redis refuses as a whole (here: a rotated token).
    const redis = createRedis({ ...testConfig(), UPSTASH_REDIS_REST_TOKEN: "rotated" }, { retries: 0 });
    const error = await redis.set(`test:${crypto.randomUUID()}`, { messages: [{ text: chat }] }, { ex: 60 }).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(chat);
    const line = logged({ tier: "user", error });
    expect(line).not.toContain("secret garden");
    expect(JSON.parse(line)).toMatchObject({ tier: "user", error: { name: "UpstashError" } });
  });

  it("a JSON SyntaxError: its message quotes the model's output", () => {
    let error: unknown;
    try {
      JSON.parse(chat);
    } catch (failure) {
      error = new AiError("AI_INVALID_OUTPUT", "the model's answer was not JSON", { cause: failure });
    }
    expect(((error as Error).cause as Error).message).toContain("meet me");
    const line = logged({ error });
    expect(line).not.toContain("meet me");
    expect(JSON.parse(line).error).toEqual({
      name: "AiError",
      code: "AI_INVALID_OUTPUT",
      message: "the model's answer was not JSON",
      cause: { name: "SyntaxError" },
    });
  });

  it("a failed query: drizzle's message carries the parameters, Postgres's cause the value it refused", async () => {
    const error = await testDb().execute(sql`select ${chat}::int`).then(() => undefined, (failure: unknown) => failure);
    expect(((error as Error).cause as Error).message).toContain("secret garden");
    const line = logged({ error });
    expect(line).not.toContain("secret garden");
    // The SQLSTATE survives: an operator still sees what kind of failure it was.
    expect(JSON.parse(line).error).toMatchObject({ name: "DrizzleQueryError", cause: { name: "NeonDbError", code: "22P02" } });
  });
});

describe("email masking", () => {
  it("masks addresses and leaves everything else as it was", () => {
    expect(redact("write to ann.lee+x@mail.example.com, or bob@b.io.")).toBe("write to [redacted], or [redacted].");
    // A match ends where the address does; what follows is scanned afresh.
    expect(redact("a@b.com1@c.org and @x.com and no@tld and a@b.c")).toBe("[redacted][redacted] and @x.com and no@tld and a@b.c");
  });

  it("finds exactly what the plain address pattern finds, on 20,000 random strings", () => {
    // The plain pattern is quadratic on long runs, but a fine oracle on short strings.
    const plain = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
    const alphabet = "abcab.@.@1- ";
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    let withAddress = 0;
    for (let i = 0; i < 20_000; i++) {
      const input = Array.from({ length: Math.floor(random() * 24) }, () => alphabet[Math.floor(random() * alphabet.length)]).join("");
      const expected = input.replace(plain, "[redacted]");
      if (expected !== input) withAddress++;
      expect(redact(input), JSON.stringify(input)).toBe(expected);
    }
    expect(withAddress).toBeGreaterThan(1_000);
  });

  it("is linear on adversarial input: 256k characters of long runs, of '@' runs and of domains with no end", () => {
    const size = 256 * 1024;
    const inputs = [
      "a".repeat(size - 1) + "@",
      "a.".repeat(size / 2 - 1) + "@x",
      "a@" + "b".repeat(size - 2),
      "a@" + "b.".repeat(size / 2 - 1),
      "a@".repeat(size / 2),
    ];
    const started = Date.now();
    for (const input of inputs) expect(redact(input)).toBe(input);
    expect(redact("x".repeat(size) + " ann@example.com")).toBe(`${"x".repeat(size)} [redacted]`);
    // The quadratic pattern took minutes on these; linear takes milliseconds. Generous on purpose.
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("request logs", () => {
  afterEach(() => vi.restoreAllMocks());

  it("carry request id, user id, route, status and latency, but no token, email or message text", async () => {
    await resetDatabase();
    const lines: string[] = [];
    for (const method of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    }
    const email = "private.person@example.com";
    const messageText = "meet me at the secret garden at nine";
    const token = await mintToken(clerkId(), { email });
    const app = createApp();
    const bindings = { ...env, LOG_LEVEL: "debug" };
    const send = async (init: RequestInit) => {
      const ctx = createExecutionContext();
      const response = await app.fetch(new Request("http://127.0.0.1/api/v1/users/me", init), bindings, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    };
    const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
    expect((await send({ headers })).status).toBe(200);
    // A rejected body echoes nothing of itself into the logs either.
    expect((await send({ method: "PUT", headers, body: JSON.stringify({ bio: messageText, email }) })).status).toBe(400);
    expect((await send({ method: "PUT", headers: { ...headers, "Content-Type": "application/json" }, body: `{"x": "${messageText}` })).status).toBe(400);

    const requestLines = lines.filter((line) => line.includes('"msg":"request"')).map((line) => JSON.parse(line));
    expect(requestLines).toHaveLength(3);
    expect(requestLines[0]).toMatchObject({ route: "/api/v1/users/me", status: 200, method: "GET", userId: expect.any(String) });
    expect(requestLines[0].requestId).toEqual(expect.any(String));
    expect(requestLines[0].latencyMs).toEqual(expect.any(Number));
    const everything = lines.join("\n");
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(token.split(".")[1]);
    expect(everything).not.toContain(email);
    expect(everything).not.toContain("secret garden");
  });

  it("are written after the answer, so no client waits for its request's line", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    const ctx = createExecutionContext();
    const response = await createApp().fetch(new Request("http://127.0.0.1/api/v1/health"), { ...env, LOG_LEVEL: "info" }, ctx);
    expect(response.status).toBe(200);
    expect(lines.filter((line) => line.includes('"msg":"request"'))).toEqual([]);
    await waitOnExecutionContext(ctx);
    expect(lines.filter((line) => line.includes('"msg":"request"')).map((line) => JSON.parse(line))).toMatchObject([{ route: "/api/v1/health", status: 200 }]);
  });
});
