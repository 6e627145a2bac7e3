CREATE TYPE "public"."ai_call_kind" AS ENUM('ocr', 'phase', 'embedding', 'suggestions', 'opener', 'tip');--> statement-breakpoint
CREATE TYPE "public"."ai_call_status" AS ENUM('succeeded', 'failed', 'cancelled', 'timeout');--> statement-breakpoint
CREATE TYPE "public"."chat_platform" AS ENUM('tinder', 'hinge', 'bumble', 'imessage', 'whatsapp', 'instagram', 'other');--> statement-breakpoint
CREATE TYPE "public"."generation_status" AS ENUM('queued', 'streaming', 'completed', 'cancelled', 'failed');--> statement-breakpoint
CREATE TYPE "public"."job_run_status" AS ENUM('running', 'succeeded', 'failed');--> statement-breakpoint
CREATE TYPE "public"."message_sender" AS ENUM('user', 'match');--> statement-breakpoint
CREATE TYPE "public"."message_source" AS ENUM('ocr', 'manual');--> statement-breakpoint
CREATE TYPE "public"."ocr_status" AS ENUM('pending', 'processing', 'completed', 'failed');--> statement-breakpoint
CREATE TYPE "public"."push_platform" AS ENUM('ios', 'android', 'web');--> statement-breakpoint
CREATE TYPE "public"."session_status" AS ENUM('awaiting_upload', 'ocr_queued', 'ocr_processing', 'ocr_review', 'ready', 'generating', 'failed');--> statement-breakpoint
CREATE TYPE "public"."session_type" AS ENUM('screenshot', 'text');--> statement-breakpoint
CREATE TYPE "public"."suggestion_feedback" AS ENUM('liked', 'disliked', 'copied', 'sent');--> statement-breakpoint
CREATE TABLE "ai_calls" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text,
	"kind" "ai_call_kind" NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"input_tokens" integer DEFAULT 0 NOT NULL,
	"output_tokens" integer DEFAULT 0 NOT NULL,
	"cost_usd" numeric(12, 6) DEFAULT '0' NOT NULL,
	"latency_ms" integer,
	"first_token_ms" integer,
	"status" "ai_call_status" NOT NULL,
	"error_code" text,
	"fallback_from" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "job_runs" (
	"message_id" text PRIMARY KEY NOT NULL,
	"job_name" text NOT NULL,
	"status" "job_run_status" DEFAULT 'running' NOT NULL,
	"attempts" integer DEFAULT 1 NOT NULL,
	"last_error" text,
	"completed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "knowledge_chunks" (
	"id" text PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"title" text NOT NULL,
	"content" text NOT NULL,
	"phase" smallint,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"embedding" vector(1536),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "knowledge_chunks_phase_range" CHECK ("knowledge_chunks"."phase" is null or "knowledge_chunks"."phase" between 1 and 4)
);
--> statement-breakpoint
CREATE TABLE "magic_openers" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"generation_id" text NOT NULL,
	"rank" smallint DEFAULT 0 NOT NULL,
	"profile" jsonb NOT NULL,
	"tone" text,
	"text" text NOT NULL,
	"liked" boolean,
	"provider" text,
	"model" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"id" text PRIMARY KEY NOT NULL,
	"session_id" text NOT NULL,
	"sender" "message_sender" NOT NULL,
	"text" text NOT NULL,
	"position" integer NOT NULL,
	"source" "message_source" NOT NULL,
	"ocr_confidence" real,
	"sent_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "push_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"token" text NOT NULL,
	"platform" "push_platform",
	"disabled_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "push_tokens_token_unique" UNIQUE("token")
);
--> statement-breakpoint
CREATE TABLE "session_images" (
	"id" text PRIMARY KEY NOT NULL,
	"session_id" text NOT NULL,
	"r2_key" text NOT NULL,
	"content_type" text NOT NULL,
	"size_bytes" integer NOT NULL,
	"sha256" text,
	"position" smallint NOT NULL,
	"ocr_status" "ocr_status" DEFAULT 'pending' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "session_images_r2_key_unique" UNIQUE("r2_key")
);
--> statement-breakpoint
CREATE TABLE "sessions" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"type" "session_type" NOT NULL,
	"status" "session_status" NOT NULL,
	"title" text,
	"match_name" text,
	"platform" "chat_platform",
	"phase" smallint,
	"phase_confidence" real,
	"error_code" text,
	"error_message" text,
	"deleted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sessions_phase_range" CHECK ("sessions"."phase" is null or "sessions"."phase" between 1 and 4),
	CONSTRAINT "sessions_phase_confidence_range" CHECK ("sessions"."phase_confidence" is null or "sessions"."phase_confidence" between 0 and 1)
);
--> statement-breakpoint
CREATE TABLE "suggestion_generations" (
	"id" text PRIMARY KEY NOT NULL,
	"session_id" text NOT NULL,
	"status" "generation_status" DEFAULT 'queued' NOT NULL,
	"tone" text,
	"count" smallint NOT NULL,
	"instructions" text,
	"provider" text,
	"model" text,
	"error_code" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "suggestion_generations_count_range" CHECK ("suggestion_generations"."count" between 1 and 5)
);
--> statement-breakpoint
CREATE TABLE "suggestions" (
	"id" text PRIMARY KEY NOT NULL,
	"generation_id" text NOT NULL,
	"session_id" text NOT NULL,
	"rank" smallint NOT NULL,
	"tone" text,
	"text" text NOT NULL,
	"feedback" "suggestion_feedback",
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tip_deliveries" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"tip_id" text NOT NULL,
	"local_date" date NOT NULL,
	"sent_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tips" (
	"id" text PRIMARY KEY NOT NULL,
	"text" text NOT NULL,
	"phase" smallint,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tips_phase_range" CHECK ("tips"."phase" is null or "tips"."phase" between 1 and 4)
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" text PRIMARY KEY NOT NULL,
	"clerk_id" text NOT NULL,
	"email" text,
	"first_name" text,
	"last_name" text,
	"gender" text,
	"looking_for" text,
	"age_range" text,
	"dating_goal" text,
	"preferences" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"daily_tips_enabled" boolean DEFAULT true NOT NULL,
	"onboarding_completed_at" timestamp with time zone,
	"deleted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_clerk_id_unique" UNIQUE("clerk_id"),
	CONSTRAINT "users_email_unique" UNIQUE("email")
);
--> statement-breakpoint
CREATE TABLE "webhook_events" (
	"svix_id" text PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "ai_calls" ADD CONSTRAINT "ai_calls_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "magic_openers" ADD CONSTRAINT "magic_openers_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_session_id_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."sessions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "push_tokens" ADD CONSTRAINT "push_tokens_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "session_images" ADD CONSTRAINT "session_images_session_id_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."sessions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "suggestion_generations" ADD CONSTRAINT "suggestion_generations_session_id_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."sessions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "suggestions" ADD CONSTRAINT "suggestions_generation_id_suggestion_generations_id_fk" FOREIGN KEY ("generation_id") REFERENCES "public"."suggestion_generations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "suggestions" ADD CONSTRAINT "suggestions_session_id_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."sessions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tip_deliveries" ADD CONSTRAINT "tip_deliveries_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tip_deliveries" ADD CONSTRAINT "tip_deliveries_tip_id_tips_id_fk" FOREIGN KEY ("tip_id") REFERENCES "public"."tips"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ai_calls_user_created_idx" ON "ai_calls" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "ai_calls_created_idx" ON "ai_calls" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "knowledge_chunks_embedding_hnsw_idx" ON "knowledge_chunks" USING hnsw ("embedding" vector_cosine_ops);--> statement-breakpoint
CREATE INDEX "knowledge_chunks_phase_idx" ON "knowledge_chunks" USING btree ("phase");--> statement-breakpoint
CREATE UNIQUE INDEX "knowledge_chunks_source_title_uq" ON "knowledge_chunks" USING btree ("source","title");--> statement-breakpoint
CREATE INDEX "magic_openers_user_created_idx" ON "magic_openers" USING btree ("user_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE UNIQUE INDEX "magic_openers_generation_rank_uq" ON "magic_openers" USING btree ("generation_id","rank");--> statement-breakpoint
CREATE INDEX "messages_session_position_idx" ON "messages" USING btree ("session_id","position");--> statement-breakpoint
CREATE INDEX "push_tokens_user_id_idx" ON "push_tokens" USING btree ("user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "session_images_session_position_uq" ON "session_images" USING btree ("session_id","position");--> statement-breakpoint
CREATE INDEX "session_images_sha256_idx" ON "session_images" USING btree ("sha256");--> statement-breakpoint
CREATE INDEX "sessions_user_created_idx" ON "sessions" USING btree ("user_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "suggestion_generations_session_created_idx" ON "suggestion_generations" USING btree ("session_id","created_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE UNIQUE INDEX "suggestions_generation_rank_uq" ON "suggestions" USING btree ("generation_id","rank");--> statement-breakpoint
CREATE INDEX "suggestions_session_idx" ON "suggestions" USING btree ("session_id");--> statement-breakpoint
CREATE UNIQUE INDEX "tip_deliveries_user_local_date_uq" ON "tip_deliveries" USING btree ("user_id","local_date");--> statement-breakpoint
CREATE INDEX "users_deleted_at_idx" ON "users" USING btree ("deleted_at") WHERE "users"."deleted_at" is not null;