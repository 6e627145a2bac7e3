DROP INDEX "session_images_user_idx";--> statement-breakpoint
ALTER TABLE "session_images" ADD COLUMN "url_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "session_images" ADD COLUMN "receiving_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "session_images" ADD COLUMN "r2_deleted_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "session_images_user_created_idx" ON "session_images" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "session_images_in_r2_idx" ON "session_images" USING btree ("id") WHERE "session_images"."r2_deleted_at" is null;--> statement-breakpoint
-- A row without an upload was a PUT streaming when this ran: it keeps its claim on the key.
UPDATE "session_images" SET "receiving_at" = "created_at" WHERE "uploaded_at" IS NULL;
