CREATE TABLE "briefs" (
	"id" text PRIMARY KEY NOT NULL,
	"slug" text NOT NULL,
	"title" text NOT NULL,
	"content" text NOT NULL,
	"user_id" text NOT NULL,
	"model_id" text NOT NULL,
	"published" boolean DEFAULT false NOT NULL,
	"view_count" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "briefs_view_count_nonnegative" CHECK ("briefs"."view_count" >= 0)
);
--> statement-breakpoint
CREATE TABLE "models" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"provider" text NOT NULL,
	"slug" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "query_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"duration_ms" double precision NOT NULL,
	"failed" boolean DEFAULT false NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "reviews" (
	"id" text PRIMARY KEY NOT NULL,
	"brief_id" text NOT NULL,
	"user_id" text NOT NULL,
	"rating" integer NOT NULL,
	"comment" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "reviews_rating_range" CHECK ("reviews"."rating" BETWEEN 1 AND 5)
);
--> statement-breakpoint
CREATE TABLE "token_transactions" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"amount" bigint NOT NULL,
	"type" text NOT NULL,
	"reason" text NOT NULL,
	"brief_id" text,
	"balance_after" bigint NOT NULL,
	"idempotency_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "token_transactions_amount_sign" CHECK (("token_transactions"."type" = 'credit' AND "token_transactions"."amount" > 0) OR ("token_transactions"."type" = 'deduct' AND "token_transactions"."amount" < 0)),
	CONSTRAINT "token_transactions_balance_after_nonnegative" CHECK ("token_transactions"."balance_after" >= 0)
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" text PRIMARY KEY NOT NULL,
	"email" text NOT NULL,
	"name" text NOT NULL,
	"token_balance" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_token_balance_range" CHECK ("users"."token_balance" >= 0 AND "users"."token_balance" <= 9007199254740991)
);
--> statement-breakpoint
ALTER TABLE "briefs" ADD CONSTRAINT "briefs_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "briefs" ADD CONSTRAINT "briefs_model_id_models_id_fk" FOREIGN KEY ("model_id") REFERENCES "public"."models"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reviews" ADD CONSTRAINT "reviews_brief_id_briefs_id_fk" FOREIGN KEY ("brief_id") REFERENCES "public"."briefs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reviews" ADD CONSTRAINT "reviews_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "token_transactions" ADD CONSTRAINT "token_transactions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "token_transactions" ADD CONSTRAINT "token_transactions_brief_id_briefs_id_fk" FOREIGN KEY ("brief_id") REFERENCES "public"."briefs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "briefs_slug_unique" ON "briefs" USING btree ("slug");--> statement-breakpoint
CREATE INDEX "briefs_view_count_idx" ON "briefs" USING btree ("view_count");--> statement-breakpoint
CREATE INDEX "briefs_created_at_idx" ON "briefs" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "briefs_published_idx" ON "briefs" USING btree ("published");--> statement-breakpoint
CREATE INDEX "briefs_user_id_idx" ON "briefs" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "briefs_model_id_idx" ON "briefs" USING btree ("model_id");--> statement-breakpoint
CREATE INDEX "briefs_published_view_count_idx" ON "briefs" USING btree ("published","view_count");--> statement-breakpoint
CREATE INDEX "briefs_published_created_at_idx" ON "briefs" USING btree ("published","created_at");--> statement-breakpoint
CREATE INDEX "briefs_user_id_created_at_idx" ON "briefs" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "models_slug_unique" ON "models" USING btree ("slug");--> statement-breakpoint
CREATE INDEX "query_log_name_recorded_at_idx" ON "query_log" USING btree ("name","recorded_at");--> statement-breakpoint
CREATE INDEX "query_log_recorded_at_idx" ON "query_log" USING btree ("recorded_at");--> statement-breakpoint
CREATE INDEX "reviews_brief_id_idx" ON "reviews" USING btree ("brief_id");--> statement-breakpoint
CREATE INDEX "reviews_user_id_idx" ON "reviews" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "reviews_rating_idx" ON "reviews" USING btree ("rating");--> statement-breakpoint
CREATE INDEX "reviews_created_at_idx" ON "reviews" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "reviews_brief_id_created_at_idx" ON "reviews" USING btree ("brief_id","created_at");--> statement-breakpoint
CREATE INDEX "token_transactions_user_id_idx" ON "token_transactions" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "token_transactions_created_at_idx" ON "token_transactions" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "token_transactions_brief_id_idx" ON "token_transactions" USING btree ("brief_id");--> statement-breakpoint
CREATE INDEX "token_transactions_user_id_created_at_idx" ON "token_transactions" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "token_transactions_idempotency_key_unique" ON "token_transactions" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_unique" ON "users" USING btree ("email");