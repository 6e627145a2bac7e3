CREATE TABLE "opener_generations" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"status" "generation_status" DEFAULT 'queued' NOT NULL,
	"profile" jsonb NOT NULL,
	"tone" text,
	"count" smallint NOT NULL,
	"language" text,
	"provider" text,
	"model" text,
	"error_code" text,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "opener_generations_count_range" CHECK ("opener_generations"."count" between 1 and 5)
);
--> statement-breakpoint
ALTER TABLE "opener_generations" ADD CONSTRAINT "opener_generations_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "opener_generations_user_created_idx" ON "opener_generations" USING btree ("user_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
-- Nothing wrote openers before generations had a table; any row without one could not be shown.
DELETE FROM "magic_openers";--> statement-breakpoint
ALTER TABLE "magic_openers" ADD CONSTRAINT "magic_openers_generation_id_opener_generations_id_fk" FOREIGN KEY ("generation_id") REFERENCES "public"."opener_generations"("id") ON DELETE cascade ON UPDATE no action;