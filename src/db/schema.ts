import { sql } from "drizzle-orm";
import {
  boolean,
  check,
  date,
  index,
  integer,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  primaryKey,
  real,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  vector,
} from "drizzle-orm/pg-core";
import type { AiCallErrorCode, ErrorCode, OutcomeErrorCode } from "../lib/errors";
import { newId } from "../lib/ids";

/** Dimension of `text-embedding-3-small`; every embedding the knowledge base stores has it. */
export const EMBEDDING_DIMENSIONS = 1536;

const id = () =>
  text("id")
    .primaryKey()
    .$defaultFn(() => newId());
const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();
const updatedAt = () =>
  timestamp("updated_at", { withTimezone: true, mode: "date" })
    .notNull()
    .defaultNow()
    .$onUpdate(() => new Date());
const nullableTimestamp = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const sessionTypeEnum = pgEnum("session_type", ["screenshot", "text"]);
export const sessionStatusEnum = pgEnum("session_status", [
  "awaiting_upload",
  "ocr_queued",
  "ocr_processing",
  "ocr_review",
  "ready",
  "generating",
  "failed",
]);
export const chatPlatformEnum = pgEnum("chat_platform", [
  "tinder",
  "hinge",
  "bumble",
  "imessage",
  "whatsapp",
  "instagram",
  "other",
]);
export const ocrStatusEnum = pgEnum("ocr_status", ["pending", "processing", "completed", "failed"]);
export const messageSenderEnum = pgEnum("message_sender", ["user", "match"]);
export const messageSourceEnum = pgEnum("message_source", ["ocr", "manual"]);
export const generationStatusEnum = pgEnum("generation_status", [
  "queued",
  "streaming",
  "completed",
  "cancelled",
  "failed",
]);
export const suggestionFeedbackEnum = pgEnum("suggestion_feedback", ["liked", "disliked", "copied", "sent"]);
export const aiCallKindEnum = pgEnum("ai_call_kind", ["ocr", "phase", "embedding", "suggestions", "opener", "tip"]);
export const aiCallStatusEnum = pgEnum("ai_call_status", ["succeeded", "failed", "cancelled", "timeout"]);
export const pushPlatformEnum = pgEnum("push_platform", ["ios", "android", "web"]);
export const jobRunStatusEnum = pgEnum("job_run_status", ["running", "succeeded", "failed"]);
/**
 * Who deleted an account: its owner (a later sign-in restores it) or Clerk (never restored);
 * `purging` once the purge has taken it (never restored: its data is going).
 */
export const accountDeletedByEnum = pgEnum("account_deleted_by", ["user", "clerk", "purging"]);

/** The chat analysis stored on a session (see src/modules/suggestions/analysis.ts). */
export type SessionAnalysis = {
  interest: number;
  interestReason: string;
  matchTone: string;
  energy: "low" | "medium" | "high";
  signals: { green: string[]; red: string[] };
  nextMove: string;
  language: string;
  investment: {
    user: { messages: number; averageLength: number; questions: number };
    match: { messages: number; averageLength: number; questions: number };
    balance: number;
  };
  generationId: string;
};

export const users = pgTable(
  "users",
  {
    id: id(),
    clerkId: text("clerk_id").notNull().unique(),
    // Clerk session tokens carry no email by default: a just-in-time user may have none yet.
    email: text("email").unique(),
    firstName: text("first_name"),
    lastName: text("last_name"),
    gender: text("gender"),
    lookingFor: text("looking_for"),
    ageRange: text("age_range"),
    datingGoal: text("dating_goal"),
    preferences: jsonb("preferences")
      .$type<{ defaultTone?: string; language?: string; suggestionCount?: number; tipHour?: number; screenshotRetention?: string }>()
      .notNull()
      .default({}),
    timezone: text("timezone").notNull().default("UTC"),
    dailyTipsEnabled: boolean("daily_tips_enabled").notNull().default(true),
    onboardingCompletedAt: nullableTimestamp("onboarding_completed_at"),
    deletedAt: nullableTimestamp("deleted_at"),
    deletedBy: accountDeletedByEnum("deleted_by"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    // The purge job scans soft-deleted users only.
    index("users_deleted_at_idx").on(t.deletedAt).where(sql`${t.deletedAt} is not null`),
    check("users_deleted_by_set", sql`(${t.deletedAt} is null) = (${t.deletedBy} is null)`),
  ],
);

export const pushTokens = pgTable(
  "push_tokens",
  {
    id: id(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    token: text("token").notNull().unique(),
    platform: pushPlatformEnum("platform"),
    disabledAt: nullableTimestamp("disabled_at"),
    lastUsedAt: nullableTimestamp("last_used_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("push_tokens_user_id_idx").on(t.userId)],
);

/** Expo tickets whose receipts are still to be read (a ticket id is Expo's). */
export const pushTickets = pgTable(
  "push_tickets",
  {
    id: text("id").primaryKey(),
    pushTokenId: text("push_token_id")
      .notNull()
      .references(() => pushTokens.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
    checkedAt: nullableTimestamp("checked_at"),
  },
  // The receipts job reads the unchecked ones, oldest first.
  (t) => [index("push_tickets_unchecked_idx").on(t.createdAt).where(sql`${t.checkedAt} is null`)],
);

export const sessions = pgTable(
  "sessions",
  {
    id: id(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    type: sessionTypeEnum("type").notNull(),
    status: sessionStatusEnum("status").notNull(),
    title: text("title"),
    matchName: text("match_name"),
    platform: chatPlatformEnum("platform"),
    phase: smallint("phase"),
    phaseConfidence: real("phase_confidence"),
    // The chat analysis of the last generation (SPEC §12), made in the phase step's call; null
    // until one ran, and for a conversation too short to read. `interest` and `language` are
    // its columns for lists and insights.
    analysis: jsonb("analysis").$type<SessionAnalysis>(),
    interest: smallint("interest"),
    language: text("language"),
    analysedAt: nullableTimestamp("analysed_at"),
    errorCode: text("error_code").$type<OutcomeErrorCode>(),
    errorMessage: text("error_message"),
    // The step a failed session failed in: `retry` goes back to it.
    failedFrom: sessionStatusEnum("failed_from"),
    // The OCR run that holds the session while it is read (see lib/lease.ts).
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: nullableTimestamp("lease_expires_at"),
    deletedAt: nullableTimestamp("deleted_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    // Cursor pagination: newest first, id as tie-breaker.
    index("sessions_user_created_idx").on(t.userId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    check("sessions_phase_range", sql`${t.phase} is null or ${t.phase} between 1 and 4`),
    check("sessions_interest_range", sql`${t.interest} is null or ${t.interest} between 0 and 100`),
    check(
      "sessions_phase_confidence_range",
      sql`${t.phaseConfidence} is null or ${t.phaseConfidence} between 0 and 1`,
    ),
  ],
);

export const sessionImages = pgTable(
  "session_images",
  {
    id: id(),
    // Screenshots are uploaded before their session exists: the uploader owns the row, and
    // session and position are set when a session claims it.
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    sessionId: text("session_id").references(() => sessions.id, { onDelete: "cascade" }),
    r2Key: text("r2_key").notNull().unique(),
    contentType: text("content_type").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    sha256: text("sha256"),
    position: smallint("position"),
    // The row is written when the upload URL is signed (it reserves the key and counts against
    // the upload quota until `url_expires_at`); `receiving_at` is set while a PUT streams the body
    // into R2 (the claim that keeps a second PUT out), `uploaded_at` once the object is stored.
    urlExpiresAt: nullableTimestamp("url_expires_at"),
    receivingAt: nullableTimestamp("receiving_at"),
    uploadedAt: nullableTimestamp("uploaded_at"),
    // When the retention sweep (or confirm-ocr, for `after_ocr`) deleted the object from R2: the
    // row stays so the session can say its screenshot existed and is gone.
    r2DeletedAt: nullableTimestamp("r2_deleted_at"),
    ocrStatus: ocrStatusEnum("ocr_status").notNull().default("pending"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("session_images_session_position_uq").on(t.sessionId, t.position),
    index("session_images_user_created_idx").on(t.userId, t.createdAt),
    // OCR results are cached by image hash.
    index("session_images_sha256_idx").on(t.sha256),
    // The retention sweep pages through the objects still in R2, by id.
    index("session_images_in_r2_idx").on(t.id).where(sql`${t.r2DeletedAt} is null`),
  ],
);

export const messages = pgTable(
  "messages",
  {
    id: id(),
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    sender: messageSenderEnum("sender").notNull(),
    text: text("text").notNull(),
    position: integer("position").notNull(),
    source: messageSourceEnum("source").notNull(),
    ocrConfidence: real("ocr_confidence"),
    sentAt: nullableTimestamp("sent_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  // Positions are dense (0..n-1) per session. Their uniqueness is a DEFERRABLE constraint
  // written by hand in migration 0003, because shifting positions by one inside a statement
  // passes through transient duplicates; drizzle cannot declare that, so it is not here.
);

export const suggestionGenerations = pgTable(
  "suggestion_generations",
  {
    id: id(),
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    status: generationStatusEnum("status").notNull().default("queued"),
    tone: text("tone"),
    count: smallint("count").notNull(),
    instructions: text("instructions"),
    // The language the suggestions were written in (BCP-47): the user's choice, else the chat's.
    language: text("language"),
    provider: text("provider"),
    model: text("model"),
    errorCode: text("error_code").$type<OutcomeErrorCode>(),
    // The job run that holds the generation while it streams (see lib/lease.ts).
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: nullableTimestamp("lease_expires_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("suggestion_generations_session_created_idx").on(t.sessionId, t.createdAt.desc().nullsFirst()),
    check("suggestion_generations_count_range", sql`${t.count} between 1 and 5`),
  ],
);

export const suggestions = pgTable(
  "suggestions",
  {
    id: id(),
    generationId: text("generation_id")
      .notNull()
      .references(() => suggestionGenerations.id, { onDelete: "cascade" }),
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    rank: smallint("rank").notNull(),
    tone: text("tone"),
    text: text("text").notNull(),
    feedback: suggestionFeedbackEnum("feedback"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    // A redelivered job must not insert the same suggestion twice.
    uniqueIndex("suggestions_generation_rank_uq").on(t.generationId, t.rank),
    index("suggestions_session_idx").on(t.sessionId),
  ],
);

/** What a magic-opener generation is asked with (SPEC §4): the match's profile as the user saw it. */
export type OpenerProfile = {
  name?: string;
  bio?: string;
  interests?: string[];
  prompts?: Array<{ question: string; answer: string }>;
  photoKey?: string;
};

/**
 * One request for magic openers. Written before the 202, so the room's owner is known the
 * moment the client connects; the openers hang off it once written.
 */
export const openerGenerations = pgTable(
  "opener_generations",
  {
    id: id(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    status: generationStatusEnum("status").notNull().default("queued"),
    profile: jsonb("profile").$type<OpenerProfile>().notNull(),
    tone: text("tone"),
    count: smallint("count").notNull(),
    language: text("language"),
    provider: text("provider"),
    model: text("model"),
    errorCode: text("error_code").$type<OutcomeErrorCode>(),
    // The job run that holds the generation while it streams (see lib/lease.ts).
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: nullableTimestamp("lease_expires_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("opener_generations_user_created_idx").on(t.userId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    check("opener_generations_count_range", sql`${t.count} between 1 and 5`),
  ],
);

export const magicOpeners = pgTable(
  "magic_openers",
  {
    id: id(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    generationId: text("generation_id")
      .notNull()
      .references(() => openerGenerations.id, { onDelete: "cascade" }),
    rank: smallint("rank").notNull().default(0),
    profile: jsonb("profile").$type<OpenerProfile>().notNull(),
    tone: text("tone"),
    text: text("text").notNull(),
    liked: boolean("liked"),
    provider: text("provider"),
    model: text("model"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("magic_openers_user_created_idx").on(t.userId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    uniqueIndex("magic_openers_generation_rank_uq").on(t.generationId, t.rank),
  ],
);

export const aiCalls = pgTable(
  "ai_calls",
  {
    id: id(),
    // Kept (user detached) when an account is purged: totals and budgets still need the cost.
    userId: text("user_id").references(() => users.id, { onDelete: "set null" }),
    kind: aiCallKindEnum("kind").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    inputTokens: integer("input_tokens").notNull().default(0),
    outputTokens: integer("output_tokens").notNull().default(0),
    costUsd: numeric("cost_usd", { precision: 12, scale: 6 }).notNull().default("0"),
    // The vendor never reported this call's usage (cancelled, timed out, cut off): the tokens
    // and cost are our estimate from the prompt and what was streamed, not the vendor's bill.
    usageEstimated: boolean("usage_estimated").notNull().default(false),
    latencyMs: integer("latency_ms"),
    firstTokenMs: integer("first_token_ms"),
    status: aiCallStatusEnum("status").notNull(),
    errorCode: text("error_code").$type<AiCallErrorCode>(),
    fallbackFrom: text("fallback_from"),
    createdAt: createdAt(),
  },
  (t) => [
    // Per-user daily usage and budget checks.
    index("ai_calls_user_created_idx").on(t.userId, t.createdAt),
    // Global daily budget.
    index("ai_calls_created_idx").on(t.createdAt),
  ],
);

export const knowledgeChunks = pgTable(
  "knowledge_chunks",
  {
    id: id(),
    source: text("source").notNull(),
    title: text("title").notNull(),
    content: text("content").notNull(),
    phase: smallint("phase"),
    tags: text("tags").array().notNull().default(sql`'{}'::text[]`),
    embedding: vector("embedding", { dimensions: EMBEDDING_DIMENSIONS }),
    // sha256 of title + content: an unchanged chunk is not embedded again.
    contentHash: text("content_hash"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("knowledge_chunks_embedding_hnsw_idx").using("hnsw", t.embedding.op("vector_cosine_ops")),
    index("knowledge_chunks_phase_idx").on(t.phase),
    // The loader upserts by (source, title) so re-running it never duplicates a chunk.
    uniqueIndex("knowledge_chunks_source_title_uq").on(t.source, t.title),
    check("knowledge_chunks_phase_range", sql`${t.phase} is null or ${t.phase} between 1 and 4`),
  ],
);

export const tips = pgTable(
  "tips",
  {
    id: id(),
    text: text("text").notNull(),
    phase: smallint("phase"),
    active: boolean("active").notNull().default(true),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [check("tips_phase_range", sql`${t.phase} is null or ${t.phase} between 1 and 4`)],
);

/** A curated tip in another language, translated once by a model and shared by every user of it. */
export const tipTranslations = pgTable(
  "tip_translations",
  {
    tipId: text("tip_id")
      .notNull()
      .references(() => tips.id, { onDelete: "cascade" }),
    // A BCP-47 tag's primary language ("es" for "es-MX"): one translation serves its regions.
    language: text("language").notNull(),
    text: text("text").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tipId, t.language] })],
);

export const tipDeliveries = pgTable(
  "tip_deliveries",
  {
    id: id(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    tipId: text("tip_id")
      .notNull()
      .references(() => tips.id, { onDelete: "cascade" }),
    // The user's local calendar date: at most one tip per user per local day.
    localDate: date("local_date", { mode: "string" }).notNull(),
    sentAt: nullableTimestamp("sent_at"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("tip_deliveries_user_local_date_uq").on(t.userId, t.localDate)],
);

export const jobRuns = pgTable("job_runs", {
  // QStash message id: a redelivery of the same message finds its row.
  messageId: text("message_id").primaryKey(),
  jobName: text("job_name").notNull(),
  status: jobRunStatusEnum("status").notNull().default("running"),
  attempts: integer("attempts").notNull().default(1),
  lastError: text("last_error").$type<ErrorCode>(),
  completedAt: nullableTimestamp("completed_at"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const webhookEvents = pgTable("webhook_events", {
  // Svix id: a replayed webhook finds its row and is a no-op.
  svixId: text("svix_id").primaryKey(),
  type: text("type").notNull(),
  receivedAt: timestamp("received_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  createdAt: createdAt(),
});
