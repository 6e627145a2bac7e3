CREATE TABLE "tip_translations" (
	"tip_id" text NOT NULL,
	"language" text NOT NULL,
	"text" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tip_translations_tip_id_language_pk" PRIMARY KEY("tip_id","language")
);
--> statement-breakpoint
ALTER TABLE "tip_translations" ADD CONSTRAINT "tip_translations_tip_id_tips_id_fk" FOREIGN KEY ("tip_id") REFERENCES "public"."tips"("id") ON DELETE cascade ON UPDATE no action;