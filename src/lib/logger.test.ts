import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger, redact } from "./logger";

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
