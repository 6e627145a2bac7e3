import { describe, expect, it } from "vitest";
import { CANARY, leaksIn, maskLeaks } from "./leaks";

// The scan only proves something if it would catch what it looks for.
describe("the log leak scan", () => {
  it.each([
    ["message text", `{"msg":"ocr","line":"hey ${CANARY} wanna get coffee"}`],
    ["token or signature (JWT)", `{"auth":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2ln"}`],
    ["email", `{"user":"maria.lopez+dates@example.co.uk"}`],
    ["image key", `{"object":"u/user_2abc/AbCdEfGhIjKlMnOpQrStUv.png"}`],
    ["webhook signature", `{"svix":"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}`],
    ["signed URL", `{"url":"/api/v1/uploads/u/x/y.png?type=image/png&sig=AbCdEfGhIjKlMnOp"}`],
    ["bearer", `{"header":"Bearer sk_live_abcdefghijklmnop"}`],
  ])("finds %s", (kind, line) => {
    expect(leaksIn(line)).toContain(kind);
  });

  it("masks every secret of a line, so that the line can be printed", () => {
    const line = `PUT /api/v1/uploads/u/user_2abc/AbCdEfGhIjKlMnOpQrStUv.png?type=image/png&sig=AbCdEfGhIjKlMnOp 201 (${CANARY})`;
    const masked = maskLeaks(line);
    expect(leaksIn(masked)).toEqual([]);
    expect(masked).toContain("<image key>");
    expect(masked).toContain("<signed URL>");
  });

  it("passes the Worker's ordinary log lines", () => {
    const lines = [
      `{"level":"info","time":"2026-11-29T15:56:36.179Z","msg":"request","requestId":"ba1ee441-b4c4-469f-9ab3-ae645c5fd54d","method":"GET","route":"/api/v1/sessions/:id","status":200,"latencyMs":62}`,
      `{"level":"warn","msg":"job failed","job":"ocr","sessionId":"k3b9x2m1p0q8r7s6t5u4v3w2","code":"AI_UPSTREAM_FAILED","text":"[redacted]"}`,
    ];
    for (const line of lines) expect(leaksIn(line)).toEqual([]);
  });
});
