// The queue's state (messages with their attempts and due times, schedules, deduplication ids)
// and the one timer that sends whatever is due. With a data directory, every change is written
// to state.json (temp file + rename, so a crash never leaves half a file) and read back at
// start: a restarted stand-in resumes its retries, delays and schedules.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cron } from "croner";
import { retryDelayMs } from "./retry.ts";
import { signDelivery } from "./sign.ts";
import type { Outcome, Transport } from "./transport.ts";

/** What a publish, or a schedule each time it fires, turns into a message. */
export interface MessageTemplate {
  url: string;
  method: string;
  /** Sent with every attempt: the original Content-Type and the forwarded headers. */
  header: Record<string, string>;
  /** base64 */
  body: string;
  maxRetries: number;
  /** An `Upstash-Retry-Delay` expression, already checked. */
  retryDelay?: string;
  timeoutMs: number;
  callback?: string;
  failureCallback?: string;
}

export interface Message extends MessageTemplate {
  messageId: string;
  /** Callbacks are messages of their own, about the message `sourceMessageId`. */
  kind: "message" | "callback" | "failure-callback";
  sourceMessageId?: string;
  deduplicationId?: string;
  scheduleId?: string;
  createdAt: number;
  state: "pending" | "delivered" | "failed";
  /** Attempts made so far; the next one carries `Upstash-Retried: <attempts>`. */
  attempts: number;
  /** When the next attempt is due (ms since the epoch); meaningful while pending. */
  dueAt: number;
  lastStatus?: number;
  dlqId?: string;
}

export interface Schedule {
  scheduleId: string;
  /** As given, `CRON_TZ=<zone> ` prefix included. */
  cron: string;
  template: MessageTemplate;
  delayMs: number;
  createdAt: number;
  lastScheduleTime?: number;
  nextScheduleTime?: number;
}

interface State {
  messages: Message[];
  schedules: Schedule[];
  /** deduplication id → the message it first named, and until when it counts */
  dedup: Record<string, { messageId: string; expiresAt: number }>;
}

export interface QueueOptions {
  signingKey: string;
  transport: Transport;
  /** Multiplies every retry wait, QStash's backoff and Upstash-Retry-Delay alike. */
  retryDelayScale: number;
  dataDir?: string;
  log: (line: string) => void;
}

const DEDUP_WINDOW_MS = 10 * 60_000;
const CALLBACK_RETRIES = 3;
// Finished messages kept for /__control/messages; older ones are dropped so state.json stays small.
const KEEP_FINISHED = 1_000;
// The timer wakes at least this often, so a changed system clock is noticed.
const MAX_SLEEP_MS = 60_000;

export const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString("base64url")}`;

/** Croner knows no `CRON_TZ=` prefix, so it becomes croner's timezone option; UTC otherwise. */
function parseCron(expression: string): Cron {
  const [, zone, pattern = expression] = /^CRON_TZ=(\S+)\s+(.*)$/.exec(expression.trim()) ?? [];
  const cron = new Cron(pattern, { timezone: zone ?? "UTC" });
  cron.nextRun(); // an unknown zone only throws here
  return cron;
}

const isSuccess = (status: number) => status >= 200 && status < 300;
const nonRetryable = (outcome: Outcome) => outcome.status === 489 && outcome.headers["upstash-nonretryable-error"]?.includes("true");
/** QStash shows headers as lists of values. */
export const asLists = (header: Record<string, string>) =>
  Object.fromEntries(Object.entries(header).map(([name, value]) => [name, [value]]));

export function createQueue(opts: QueueOptions) {
  const { transport, log } = opts;
  const file = opts.dataDir ? join(opts.dataDir, "state.json") : undefined;
  const loaded = load();
  const messages = new Map(loaded.messages.map((message) => [message.messageId, message]));
  const schedules = new Map(loaded.schedules.map((schedule) => [schedule.scheduleId, schedule]));
  let dedup = loaded.dedup;
  // Not persisted: after a restart, what was in flight is simply due again (at least once).
  const inFlight = new Set<string>();
  const crons = new Map<string, Cron>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let dlqCount = 0;

  function load(): State {
    if (!file || !existsSync(file)) return { messages: [], schedules: [], dedup: {} };
    try {
      return JSON.parse(readFileSync(file, "utf8")) as State;
    } catch (error) {
      throw new Error(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  function save() {
    if (!file) return;
    mkdirSync(opts.dataDir!, { recursive: true });
    const state: State = { messages: [...messages.values()], schedules: [...schedules.values()], dedup };
    writeFileSync(`${file}.tmp`, JSON.stringify(state));
    renameSync(`${file}.tmp`, file);
  }

  function changed() {
    save();
    arm();
  }

  /** Sleeps until the earliest due message or schedule. */
  function arm() {
    clearTimeout(timer);
    if (closed) return;
    let next = Infinity;
    for (const schedule of schedules.values()) next = Math.min(next, schedule.nextScheduleTime ?? Infinity);
    for (const message of messages.values()) {
      if (message.state === "pending" && !inFlight.has(message.messageId)) next = Math.min(next, message.dueAt);
    }
    if (next !== Infinity) timer = setTimeout(tick, Math.min(Math.max(0, next - Date.now()), MAX_SLEEP_MS));
  }

  function tick() {
    const now = Date.now();
    let fired = false;
    for (const schedule of schedules.values()) {
      if (schedule.nextScheduleTime === undefined || schedule.nextScheduleTime > now) continue;
      add(schedule.template, { scheduleId: schedule.scheduleId, dueAt: now + schedule.delayMs });
      schedule.lastScheduleTime = now;
      schedule.nextScheduleTime = crons.get(schedule.scheduleId)?.nextRun(new Date(now))?.getTime();
      fired = true;
    }
    for (const message of messages.values()) {
      if (message.state === "pending" && !inFlight.has(message.messageId) && message.dueAt <= now) send(message, false);
    }
    if (fired) changed();
    else arm();
  }

  function add(template: MessageTemplate, extra: Partial<Message> & { dueAt: number }): Message {
    const message: Message = { ...template, messageId: newId("msg"), kind: "message", createdAt: Date.now(), state: "pending", attempts: 0, ...extra };
    messages.set(message.messageId, message);
    return message;
  }

  /** One attempt, or with `again` a duplicate of the last one that leaves the message's state alone. */
  function send(message: Message, again: boolean) {
    const retried = again ? Math.max(0, message.attempts - 1) : message.attempts;
    if (!again) inFlight.add(message.messageId);
    const body = Buffer.from(message.body, "base64");
    signDelivery(opts.signingKey, message.url, body).then((signature) => {
      // Reset or closed while signing: the message is gone.
      if (closed || messages.get(message.messageId) !== message) return;
      const headers: Record<string, string> = {
        ...message.header,
        "User-Agent": "Upstash-QStash",
        "Upstash-Message-Id": message.messageId,
        "Upstash-Retried": String(retried),
        "Upstash-Signature": signature,
      };
      if (message.scheduleId) headers["Upstash-Schedule-Id"] = message.scheduleId;
      const delivery = { id: newId("dlv"), messageId: message.messageId, url: message.url, method: message.method, headers, body: message.body };
      transport.send(delivery, message.timeoutMs, (outcome) => {
        if (again) log(`${message.messageId} → ${message.url}: ${outcome.status || `no answer (${outcome.error})`} (redelivery)`);
        else settle(message, outcome);
      });
    }, (error: unknown) => log(`cannot sign ${message.messageId}: ${String(error)}`));
  }

  function settle(message: Message, outcome: Outcome) {
    inFlight.delete(message.messageId);
    message.attempts += 1;
    message.lastStatus = outcome.status;
    const attempt = `${message.messageId} → ${message.url}: ${outcome.status || `no answer (${outcome.error})`} (attempt ${message.attempts})`;
    if (isSuccess(outcome.status)) {
      message.state = "delivered";
      log(attempt);
      if (message.callback) addCallback("callback", message.callback, message, outcome);
    } else if (message.attempts > message.maxRetries || nonRetryable(outcome)) {
      message.state = "failed";
      message.dlqId = `${Date.now()}-${dlqCount++}`;
      log(`${attempt}, giving up`);
      if (message.failureCallback) addCallback("failure-callback", message.failureCallback, message, outcome);
    } else {
      const waitMs = Math.round(retryDelayMs(message.attempts, message.retryDelay) * opts.retryDelayScale);
      message.dueAt = Date.now() + waitMs;
      log(`${attempt}, retrying in ${waitMs} ms`);
    }
    if (message.state !== "pending") dropOldFinished();
    changed();
  }

  /** QStash's callback body: the last answer plus the source message. */
  function addCallback(kind: Message["kind"], url: string, source: Message, outcome: Outcome) {
    const payload = {
      status: outcome.status,
      header: outcome.headers,
      body: outcome.body,
      retried: source.attempts - 1,
      maxRetries: source.maxRetries,
      ...(source.dlqId && { dlqId: source.dlqId }),
      sourceMessageId: source.messageId,
      url: source.url,
      method: source.method,
      sourceHeader: asLists(source.header),
      sourceBody: source.body,
      createdAt: source.createdAt,
      scheduleId: source.scheduleId ?? "",
    };
    const template: MessageTemplate = {
      url,
      method: "POST",
      header: { "Content-Type": "application/json" },
      body: Buffer.from(JSON.stringify(payload)).toString("base64"),
      maxRetries: CALLBACK_RETRIES,
      timeoutMs: source.timeoutMs,
    };
    add(template, { kind, sourceMessageId: source.messageId, dueAt: Date.now() });
  }

  function dropOldFinished() {
    let finished = 0;
    for (const message of messages.values()) if (message.state !== "pending") finished++;
    for (const message of messages.values()) {
      if (finished <= KEEP_FINISHED) break;
      if (message.state !== "pending") {
        messages.delete(message.messageId);
        finished--;
      }
    }
  }

  for (const schedule of schedules.values()) {
    const cron = parseCron(schedule.cron);
    crons.set(schedule.scheduleId, cron);
    // Firings missed while stopped are skipped, not caught up.
    schedule.nextScheduleTime = cron.nextRun()?.getTime();
  }
  arm();

  return {
    /** Queues a message, or names the one queued under the same deduplication id in the last 10 minutes. */
    publish(template: MessageTemplate, options: { dueAt: number; deduplicationId?: string }): { messageId: string; deduplicated: boolean } {
      const now = Date.now();
      for (const [id, entry] of Object.entries(dedup)) if (entry.expiresAt <= now) delete dedup[id];
      const { deduplicationId } = options;
      const seen = deduplicationId === undefined ? undefined : dedup[deduplicationId];
      if (seen) return { messageId: seen.messageId, deduplicated: true };
      const message = add(template, options);
      if (deduplicationId !== undefined) dedup[deduplicationId] = { messageId: message.messageId, expiresAt: now + DEDUP_WINDOW_MS };
      log(`${message.messageId} queued for ${template.url}${options.dueAt > now ? ` in ${Math.round((options.dueAt - now) / 1000)} s` : ""}`);
      changed();
      return { messageId: message.messageId, deduplicated: false };
    },

    /** Creates a schedule, or replaces the one with the same id. Throws on a bad cron expression. */
    putSchedule(input: { scheduleId?: string; cron: string; template: MessageTemplate; delayMs: number }): string {
      const cron = parseCron(input.cron);
      const scheduleId = input.scheduleId ?? newId("scd");
      const previous = schedules.get(scheduleId);
      schedules.set(scheduleId, {
        scheduleId,
        cron: input.cron,
        template: input.template,
        delayMs: input.delayMs,
        createdAt: previous?.createdAt ?? Date.now(),
        lastScheduleTime: previous?.lastScheduleTime,
        nextScheduleTime: cron.nextRun()?.getTime(),
      });
      crons.set(scheduleId, cron);
      log(`schedule ${scheduleId} (${input.cron}) → ${input.template.url}`);
      changed();
      return scheduleId;
    },
    schedules: () => [...schedules.values()],
    deleteSchedule(scheduleId: string): boolean {
      const existed = schedules.delete(scheduleId);
      crons.delete(scheduleId);
      if (existed) changed();
      return existed;
    },

    /** Every message, oldest first, as copies. */
    messages: (): Message[] => [...messages.values()].map((message) => ({ ...message })),
    /** Delivers the message once more: same id, fresh signature; its state does not change. */
    redeliver(messageId: string): boolean {
      const message = messages.get(messageId);
      if (message) send(message, true);
      return message !== undefined;
    },
    reset() {
      transport.cancelAll();
      messages.clear();
      schedules.clear();
      crons.clear();
      inFlight.clear();
      dedup = {};
      changed();
    },
    /** Stops the timer and drops what is in flight; the saved state keeps it pending. */
    close() {
      closed = true;
      clearTimeout(timer);
      transport.cancelAll();
    },
  };
}

export type Queue = ReturnType<typeof createQueue>;
