ALTER TABLE "sessions" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "lease_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "suggestion_generations" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "suggestion_generations" ADD COLUMN "lease_expires_at" timestamp with time zone;--> statement-breakpoint
-- Runs in flight when this ships have no lease: they keep the two minutes the old rule gave them.
UPDATE "suggestion_generations" SET "lease_expires_at" = "updated_at" + interval '2 minutes' WHERE "status" = 'streaming';--> statement-breakpoint
UPDATE "sessions" SET "lease_expires_at" = "updated_at" + interval '2 minutes' WHERE "status" = 'ocr_processing';
