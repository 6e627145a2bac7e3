ALTER TABLE "sessions" ADD COLUMN "analysis" jsonb;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "interest" smallint;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "language" text;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "analysed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "suggestion_generations" ADD COLUMN "language" text;--> statement-breakpoint
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_interest_range" CHECK ("sessions"."interest" is null or "sessions"."interest" between 0 and 100);