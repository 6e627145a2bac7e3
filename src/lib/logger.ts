import { CodedError } from "./errors";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

// Field names whose values are never written: credentials, personal data, chat content, image keys.
const redactedKeys =
  /^(authorization|cookie|set-cookie|token|access_?token|refresh_?token|jwt|password|secret|api_?key|.*_key|.*_token|.*_secret|email|text|content|message_?text|messages|prompt|r2_?key|image_?key|key|keys|database_url|connection_?string)$/i;
const bearerPattern = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/g;
const REDACTED = "[redacted]";
// What a library error may keep: an identifier-like code (SQLSTATE, errno), never prose.
const safeCode = /^[\w.-]{1,64}$/;
const safeName = /^[\w$.-]{1,64}$/;

// Email addresses are found from each "@" outwards: the local part by walking back over the run
// of local-part characters before it, the domain by a pattern anchored after it. The plain
// pattern `[A-Za-z0-9._%+-]+@…` finds the same addresses but is retried at every position of a
// long run with no "@" after it, which takes time quadratic in the run (1 s for 32k characters);
// here each character is read a bounded number of times.
const domainAfterAt = /[A-Za-z0-9.-]+\.[A-Za-z]{2,}/y;

function isLocalPartChar(code: number): boolean {
  // A-Z a-z 0-9 . _ % + -
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || (code >= 48 && code <= 57) || code === 46 || code === 95 || code === 37 || code === 43 || code === 45;
}

function maskEmails(text: string): string {
  let masked = "";
  let copied = 0;
  for (let at = text.indexOf("@"); at !== -1; at = text.indexOf("@", at + 1)) {
    let start = at;
    while (start > copied && isLocalPartChar(text.charCodeAt(start - 1))) start--;
    if (start === at) continue;
    domainAfterAt.lastIndex = at + 1;
    if (!domainAfterAt.test(text)) continue;
    masked += text.slice(copied, start) + REDACTED;
    copied = domainAfterAt.lastIndex;
    at = copied - 1;
  }
  return copied === 0 ? text : masked + text.slice(copied);
}

function scrub(text: string): string {
  return maskEmails(text.replace(bearerPattern, `$1${REDACTED}`));
}

function isError(value: unknown): value is Error {
  return value instanceof Error || Object.prototype.toString.call(value) === "[object Error]";
}

function className(value: object): string {
  const constructorName = (value as { constructor?: { name?: unknown } }).constructor?.name;
  const name = typeof constructorName === "string" && constructorName !== "Error" ? constructorName : (value as Error).name;
  return typeof name === "string" && safeName.test(name) ? name : "Error";
}

/**
 * An error as its class, never its message or stack: libraries put whatever they were handed
 * into messages (@upstash/redis the whole command, JSON.parse a snippet of its input, drizzle
 * the query's parameters). Our own errors (`CodedError`: messages we wrote) keep code and
 * message. A library error keeps an identifier-like `code` and its numbers and flags (HTTP
 * status, `retryable`), which carry no text. Causes are described the same way.
 */
function describeError(error: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: className(error) };
  if (error instanceof CodedError) {
    out.code = error.code;
    out.message = scrub(error.message);
  } else {
    for (const [key, value] of Object.entries(error)) {
      if (typeof value === "number" || typeof value === "boolean") out[key] = value;
    }
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && safeCode.test(code)) out.code = code;
  }
  if (error.cause !== undefined) out.cause = describeCause(error.cause, depth + 1);
  return out;
}

function describeCause(cause: unknown, depth: number): unknown {
  if (depth > 6) return "[truncated]";
  if (isError(cause)) return describeError(cause, depth);
  // Anything else handed over as a cause (zod issues, a response body) is only named.
  return { name: cause === null ? "null" : typeof cause === "object" ? className(cause) : typeof cause };
}

/** Deep copy with sensitive fields replaced; strings are scrubbed of bearer tokens and emails. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[truncated]";
  if (typeof value === "string") return scrub(value);
  if (isError(value)) return describeError(value, depth);
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      out[key] = redactedKeys.test(key) ? REDACTED : redact(inner, depth + 1);
    }
    return out;
  }
  return value;
}

/** Structured JSON lines on the console, which Workers Logs and `wrangler tail` index. */
export function createLogger(options: { level?: LogLevel; base?: LogFields } = {}): Logger {
  const minimum = levelRank[options.level ?? "info"];
  const base = options.base ?? {};
  const write = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (levelRank[level] < minimum) return;
    const line = JSON.stringify({
      level,
      time: new Date().toISOString(),
      msg,
      ...(redact({ ...base, ...fields }) as LogFields),
    });
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => createLogger({ level: options.level ?? "info", base: { ...base, ...fields } }),
  };
}
