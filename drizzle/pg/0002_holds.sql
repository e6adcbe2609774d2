CREATE TABLE "token_holds" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"amount" bigint NOT NULL,
	"status" text NOT NULL,
	"captured_amount" bigint,
	"reason" text NOT NULL,
	"brief_id" text,
	"idempotency_key" text,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"settled_at" timestamp with time zone,
	CONSTRAINT "token_holds_amount_positive" CHECK ("token_holds"."amount" > 0),
	CONSTRAINT "token_holds_status_known" CHECK ("token_holds"."status" IN ('active', 'captured', 'released', 'expired')),
	CONSTRAINT "token_holds_capture_within_hold" CHECK (("token_holds"."status" = 'captured') = ("token_holds"."captured_amount" IS NOT NULL) AND ("token_holds"."captured_amount" IS NULL OR ("token_holds"."captured_amount" > 0 AND "token_holds"."captured_amount" <= "token_holds"."amount"))),
	CONSTRAINT "token_holds_settled_when_not_active" CHECK (("token_holds"."status" = 'active') = ("token_holds"."settled_at" IS NULL))
);
--> statement-breakpoint
ALTER TABLE "token_transactions" ADD COLUMN "hold_id" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "held_tokens" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "token_holds" ADD CONSTRAINT "token_holds_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "token_holds" ADD CONSTRAINT "token_holds_brief_id_briefs_id_fk" FOREIGN KEY ("brief_id") REFERENCES "public"."briefs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "token_holds_active_user_idx" ON "token_holds" USING btree ("user_id","expires_at","amount") WHERE status = 'active';--> statement-breakpoint
CREATE INDEX "token_holds_user_id_idx" ON "token_holds" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "token_holds_brief_id_idx" ON "token_holds" USING btree ("brief_id") WHERE brief_id IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "token_holds_idempotency_key_unique" ON "token_holds" USING btree ("idempotency_key") WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
ALTER TABLE "token_transactions" ADD CONSTRAINT "token_transactions_hold_id_token_holds_id_fk" FOREIGN KEY ("hold_id") REFERENCES "public"."token_holds"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "token_transactions_hold_id_unique" ON "token_transactions" USING btree ("hold_id") WHERE hold_id IS NOT NULL;