import { request as httpRequest } from "node:http";
import { describe, expect, it } from "vitest";
import type { Dependency } from "../../../local/stand-ins.ts";
import { errorCatalog } from "../../../src/lib/errors.ts";
import { api, openDevSocket, useDevStack } from "../../dev/stack.ts";
import { pngBytes } from "../../images.ts";
import { countFigures } from "../figures.ts";
import { CANARY } from "../leaks.ts";

// Each dependency stopped in the middle of live work on a real `wrangler dev` — a streaming
// generation, an upload, an OCR run and a session create at once — held down, and started again.
// Every answer meanwhile must be a catalog code (never a 500 or internals), every operation must
// reach an end the client can act on, the stack must serve again with no manual step, and every
// row it acknowledged must still be there at the end.

const DEPENDENCIES: Dependency[] = ["postgres", "redis", "redis-rest", "qstash", "openai", "anthropic", "gemini"];
/** Long enough for every operation in flight to meet the outage, short enough for the suite's budget. */
const OUTAGE_MS = 1_500;
/** How long an operation may take to reach its end once the dependency is back (QStash retries included). */
const SETTLE_MS = 30_000;

type Answer = { status: number; body: string };
type Problem = { dependency: Dependency; operation: string; problem: string };

const catalogCodes = new Set(Object.keys(errorCatalog));
// What a body must never show: a stack, a driver's or runtime's own words.
const INTERNALS = /\bat \S+ \(|node_modules|ECONNREFUSED|ECONNRESET|fetch failed|NeonDbError|TypeError|SyntaxError|stack/i;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What is wrong with an answer the client got during or after a fault, if anything. */
function judge(answer: Answer): string | undefined {
  if (answer.status >= 200 && answer.status < 300) return undefined;
  if (answer.status === 0) return "no answer";
  if (INTERNALS.test(answer.body)) return `${answer.status} shows internals`;
  if (answer.status === 500) return "500";
  let code: unknown;
  try {
    code = (JSON.parse(answer.body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    return `${answer.status} without the error envelope`;
  }
  return typeof code === "string" && catalogCodes.has(code) ? undefined : `${answer.status} with code ${String(code)} not in the catalog`;
}

const text = (i: number) => `${CANARY} message ${i}: so where would you take me on a first date?`;

describe("dependencies stopped and started under live work (real wrangler dev)", () => {
  const fixture = useDevStack({
    // Every line of wrangler, workerd and the stand-ins goes through the test console, where the
    // suite's reporter scans it for secrets.
    log: (service) => (line) => console.log(`[${service}] ${line}`),
    vars: { LOG_LEVEL: "debug", JOB_LEASE_SECONDS: "3" },
    // Paced so that a generation and an OCR run are still streaming when the outage starts.
    aiPacing: { firstTokenMs: 150, tokenMs: 40 },
    qstashRetryDelayScale: 0.02,
  });

  it("answers catalog codes during each outage, recovers by itself after it, and loses no acknowledged row", async ({ task }) => {
    const { stack } = fixture;
    const problems: Problem[] = [];
    const acknowledged: Array<{ token: string; sessionId: string; messages: number }> = [];
    let operations = 0;
    let consistent = 0;
    let recovered = 0;
    /** What each operation answered or ended as, per dependency: the table's evidence that each outage bit. */
    const seen: string[] = [];

    for (const [round, dependency] of DEPENDENCIES.entries()) {
      const token = await stack.token(`user_fault_${round}`);
      const note = (operation: string, problem: string | undefined) => {
        operations += 1;
        if (problem === undefined) consistent += 1;
        else problems.push({ dependency, operation, problem });
      };
      const call = async (path: string, init?: { method?: string; body?: unknown }): Promise<Answer> => {
        try {
          const response = await api(stack.url, token, path, init);
          return { status: response.status, body: await response.text() };
        } catch (error) {
          return { status: 0, body: `no answer: ${String(error)}` };
        }
      };

      // Ready before the outage: a text session with a watching socket, an upload grant, an uploaded screenshot.
      const created = await call("/api/v1/sessions", { method: "POST", body: { type: "text", messages: [0, 1, 2, 3].map((i) => ({ sender: i % 2 ? "user" : "match", text: text(i) })) } });
      expect(created.status, created.body).toBe(201);
      const textSession = (JSON.parse(created.body) as { data: { id: string } }).data.id;
      acknowledged.push({ token, sessionId: textSession, messages: 4 });
      const socket = await openDevSocket(stack.url, `/api/v1/sessions/${textSession}/ws`);
      socket.send({ type: "authenticate", token });
      await socket.frame("authenticated");
      const screenshot = await upload(stack.url, token, pngBytes(24 * 1024 + round));
      expect(screenshot.status, screenshot.body).toBe(201);
      const laterScreenshot = await upload(stack.url, token, pngBytes(28 * 1024 + round));
      expect(laterScreenshot.status, laterScreenshot.body).toBe(201);
      const image = pngBytes(48 * 1024 + round);
      const grant = await call(`/api/v1/sessions/upload-url?contentType=image/png&size=${image.length}`);
      expect(grant.status, grant.body).toBe(200);

      // Live work: the upload is half sent, the generation streams, an OCR run has just been queued.
      const halfSent = startUpload(new URL((JSON.parse(grant.body) as { data: { uploadUrl: string } }).data.uploadUrl), image);
      const generation = await call(`/api/v1/sessions/${textSession}/generate-suggestions`, { method: "POST", body: {} });
      expect(generation.status, generation.body).toBe(202);
      await socket.frame("suggestion.delta", 0, 15_000);
      const ocrSession = await call("/api/v1/sessions", { method: "POST", body: { type: "screenshot", imageKeys: [screenshot.key] } });
      expect(ocrSession.status, ocrSession.body).toBe(201);
      const ocrSessionId = (JSON.parse(ocrSession.body) as { data: { id: string } }).data.id;

      const outage = stack.outages[dependency];
      await outage.stop();
      const down = performance.now();
      // Arrive while the dependency is down: a text session (the database alone) and a screenshot
      // session (the database, then the job queue).
      const duringCreate = call("/api/v1/sessions", { method: "POST", body: { type: "text", messages: [{ sender: "match", text: text(9) }] } });
      const duringScreenshot = call("/api/v1/sessions", { method: "POST", body: { type: "screenshot", imageKeys: [laterScreenshot.key] } });
      const uploaded = halfSent.finish();
      await sleep(Math.max(0, OUTAGE_MS - (performance.now() - down)));
      await outage.start();

      const createAnswer = await duringCreate;
      note("session create", judge(createAnswer));
      if (createAnswer.status === 201) acknowledged.push({ token, sessionId: (JSON.parse(createAnswer.body) as { data: { id: string } }).data.id, messages: 1 });
      const uploadAnswer = await uploaded;
      note("upload", judge(uploadAnswer));
      const screenshotAnswer = await duringScreenshot;
      note("screenshot session create", judge(screenshotAnswer));

      // The generation and the OCR run each reach an end the client can act on, by themselves.
      const ended = (id: string, ends: string[]) => async () => {
        const answer = await call(`/api/v1/sessions/${id}`);
        if (answer.status !== 200) return undefined;
        const status = (JSON.parse(answer.body) as { data: { status: string } }).data.status;
        return ends.includes(status) ? status : undefined;
      };
      const generationEnd = await poll(ended(textSession, ["ready", "failed"]), SETTLE_MS);
      note("streaming generation", generationEnd === undefined ? "never left `generating`" : undefined);
      const ocrEnd = await poll(ended(ocrSessionId, ["ocr_review", "ready", "failed"]), SETTLE_MS);
      note("OCR run", ocrEnd === undefined ? "never left the OCR states" : undefined);
      // A screenshot session the API accepted during the outage gets its OCR run after it.
      const laterId = screenshotAnswer.status === 201 ? (JSON.parse(screenshotAnswer.body) as { data: { id: string } }).data.id : undefined;
      const laterEnd = laterId === undefined ? undefined : await poll(ended(laterId, ["ocr_review", "ready", "failed"]), SETTLE_MS);
      if (laterId !== undefined) note("OCR run queued during the outage", laterEnd === undefined ? "never left the OCR states" : undefined);
      const lastEvent = socket.frames.filter((frame) => ["suggestion.completed", "generation.failed", "generation.restarted"].includes(frame.type)).map((frame) => `${frame.type}${frame.code ? ` ${String(frame.code)}` : ""}`);
      seen.push(
        `${dependency}: create ${outcome(createAnswer)}, screenshot create ${outcome(screenshotAnswer)}${laterId ? ` (${laterEnd ?? "stuck"})` : ""}, upload ${outcome(uploadAnswer)}, generation ${lastEvent.join(" > ") || "-"} (${generationEnd ?? "stuck"}), OCR ${ocrEnd ?? "stuck"}`,
      );
      const badFrames = socket.frames.filter((frame) => (frame.type === "error" || frame.type === "generation.failed") && !catalogCodes.has(String(frame.code)));
      if (badFrames.length > 0) problems.push({ dependency, operation: "streaming generation", problem: `frames without a catalog code: ${JSON.stringify(badFrames)}` });
      socket.close();

      // Recovery with no manual step: the whole path works again, as the app would retry it.
      const again = await poll(async () => {
        const fresh = await upload(stack.url, token, pngBytes(20 * 1024 + round));
        if (fresh.status !== 201) return undefined;
        const session = await call("/api/v1/sessions", { method: "POST", body: { type: "screenshot", imageKeys: [fresh.key] } });
        return session.status === 201 ? (JSON.parse(session.body) as { data: { id: string } }).data.id : undefined;
      }, 15_000);
      const reviewed = again === undefined ? undefined : await poll(ended(again, ["ocr_review"]), 15_000);
      if (reviewed !== undefined) recovered += 1;
      else problems.push({ dependency, operation: "recovery", problem: "no screenshot session reached OCR review within 30 s of the restart" });
    }

    // Every row the API acknowledged is still there, with its messages.
    let rowsLost = 0;
    for (const { token, sessionId, messages } of acknowledged) {
      const response = await api(stack.url, token, `/api/v1/sessions/${sessionId}`);
      const detail = response.status === 200 ? ((await response.json()) as { data: { messages: unknown[] } }).data : undefined;
      if (!detail || detail.messages.length < messages) rowsLost += 1;
    }

    process.stdout.write(`\n${seen.join("\n")}\n`);
    countFigures(task, {
      faultsInjected: DEPENDENCIES.length,
      faultsRecovered: recovered,
      operationsTried: operations,
      operationsConsistent: consistent,
      rowsLost,
      faultAnswers5xx: problems.filter((p) => /^500|internals/.test(p.problem)).length,
    });
    expect(problems).toEqual([]);
    expect(rowsLost).toBe(0);
    expect(recovered).toBe(DEPENDENCIES.length);
  });
});

/** An answer as the table's evidence shows it: its status and catalog code. */
function outcome(answer: Answer): string {
  if (answer.status >= 200 && answer.status < 300) return String(answer.status);
  const code = /"code":"([A-Z_]+)"/.exec(answer.body)?.[1];
  return `${answer.status}${code ? ` ${code}` : ""}`;
}

async function poll<T>(check: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined || performance.now() > deadline) return value;
    await sleep(250);
  }
}

/** An image uploaded the way the app does it: a signed URL, then one PUT. */
async function upload(url: string, token: string, image: Uint8Array): Promise<Answer & { key: string }> {
  const grant = await api(url, token, `/api/v1/sessions/upload-url?contentType=image/png&size=${image.length}`);
  if (grant.status !== 200) return { status: grant.status, body: await grant.text(), key: "" };
  const { uploadUrl, key } = ((await grant.json()) as { data: { uploadUrl: string; key: string } }).data;
  const put = await fetch(uploadUrl, { method: "PUT", headers: { "Content-Type": "image/png" }, body: image });
  return { status: put.status, body: await put.text(), key };
}

/** A PUT whose first half is on the wire now; `finish()` sends the rest and resolves the answer. */
function startUpload(target: URL, image: Uint8Array) {
  let resolveAnswer: (answer: Answer) => void;
  const answered = new Promise<Answer>((resolve) => (resolveAnswer = resolve));
  const req = httpRequest(
    { host: target.hostname, port: target.port, method: "PUT", path: target.pathname + target.search, headers: { "Content-Type": "image/png", "Content-Length": image.length } },
    (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolveAnswer({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    },
  );
  req.on("error", (error) => resolveAnswer({ status: 0, body: `no answer: ${error.message}` }));
  const half = Math.floor(image.length / 2);
  req.write(image.subarray(0, half));
  return {
    finish: () => {
      req.end(image.subarray(half));
      return answered;
    },
  };
}
