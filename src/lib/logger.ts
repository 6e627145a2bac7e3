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
const emailPattern = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
const REDACTED = "[redacted]";

/** Deep copy with sensitive fields replaced; strings are scrubbed of bearer tokens and emails. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[truncated]";
  if (typeof value === "string") return value.replace(bearerPattern, `$1${REDACTED}`).replace(emailPattern, REDACTED);
  if (value instanceof Error) {
    // drizzle appends the query's parameters (user data) to its message: keep only the SQL text.
    const message = value.message.split("\nparams:")[0] ?? "";
    const out: Record<string, unknown> = { name: value.name, message: redact(message, depth + 1) };
    const code = (value as { code?: unknown }).code;
    if (typeof code === "string") out.code = code;
    if (value.cause !== undefined) out.cause = redact(value.cause, depth + 1);
    return out;
  }
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
