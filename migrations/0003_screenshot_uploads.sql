-- Messages keep dense positions per session. Shifting them by one inside one statement passes
-- through transient duplicates, so uniqueness is checked at commit (DEFERRABLE); drizzle cannot
-- declare that, so this constraint lives only here.
DROP INDEX "messages_session_position_idx";--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_session_position_uq" UNIQUE ("session_id", "position") DEFERRABLE INITIALLY DEFERRED;--> statement-breakpoint
ALTER TABLE "session_images" ALTER COLUMN "session_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "session_images" ALTER COLUMN "position" DROP NOT NULL;--> statement-breakpoint
-- Uploads now precede their session: the uploader owns the row (backfilled from the session).
ALTER TABLE "session_images" ADD COLUMN "user_id" text;--> statement-breakpoint
UPDATE "session_images" SET "user_id" = "sessions"."user_id" FROM "sessions" WHERE "sessions"."id" = "session_images"."session_id";--> statement-breakpoint
ALTER TABLE "session_images" ALTER COLUMN "user_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "session_images" ADD COLUMN "uploaded_at" timestamp with time zone;--> statement-breakpoint
UPDATE "session_images" SET "uploaded_at" = "created_at";--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "failed_from" "session_status";--> statement-breakpoint
ALTER TABLE "session_images" ADD CONSTRAINT "session_images_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "session_images_user_idx" ON "session_images" USING btree ("user_id");
