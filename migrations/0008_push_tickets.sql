CREATE TABLE "push_tickets" (
	"id" text PRIMARY KEY NOT NULL,
	"push_token_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"checked_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "push_tickets" ADD CONSTRAINT "push_tickets_push_token_id_push_tokens_id_fk" FOREIGN KEY ("push_token_id") REFERENCES "public"."push_tokens"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "push_tickets_unchecked_idx" ON "push_tickets" USING btree ("created_at") WHERE "push_tickets"."checked_at" is null;