CREATE TYPE "public"."account_deleted_by" AS ENUM('user', 'clerk');--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "deleted_by" "account_deleted_by";--> statement-breakpoint
-- Accounts deleted before this column existed count as deleted by their owner. A Clerk deletion
-- among them is safe anyway: Clerk never issues a token for a deleted user again, so none can be
-- newer than the deletion.
UPDATE "users" SET "deleted_by" = 'user' WHERE "deleted_at" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_deleted_by_set" CHECK (("users"."deleted_at" is null) = ("users"."deleted_by" is null));
