CREATE TABLE `token_holds` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`amount` integer NOT NULL,
	`status` text NOT NULL,
	`captured_amount` integer,
	`reason` text NOT NULL,
	`brief_id` text,
	`idempotency_key` text,
	`expires_at` integer NOT NULL,
	`created_at` integer NOT NULL,
	`settled_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`brief_id`) REFERENCES `briefs`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "token_holds_amount_positive" CHECK("token_holds"."amount" > 0),
	CONSTRAINT "token_holds_status_known" CHECK("token_holds"."status" IN ('active', 'captured', 'released', 'expired')),
	CONSTRAINT "token_holds_capture_within_hold" CHECK(("token_holds"."status" = 'captured') = ("token_holds"."captured_amount" IS NOT NULL) AND ("token_holds"."captured_amount" IS NULL OR ("token_holds"."captured_amount" > 0 AND "token_holds"."captured_amount" <= "token_holds"."amount"))),
	CONSTRAINT "token_holds_settled_when_not_active" CHECK(("token_holds"."status" = 'active') = ("token_holds"."settled_at" IS NULL))
);
--> statement-breakpoint
CREATE INDEX `token_holds_active_user_idx` ON `token_holds` (`user_id`,`expires_at`,`amount`) WHERE status = 'active';--> statement-breakpoint
CREATE INDEX `token_holds_user_id_idx` ON `token_holds` (`user_id`);--> statement-breakpoint
CREATE INDEX `token_holds_brief_id_idx` ON `token_holds` (`brief_id`) WHERE brief_id IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `token_holds_idempotency_key_unique` ON `token_holds` (`idempotency_key`) WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
ALTER TABLE `token_transactions` ADD `hold_id` text REFERENCES token_holds(id);--> statement-breakpoint
CREATE UNIQUE INDEX `token_transactions_hold_id_unique` ON `token_transactions` (`hold_id`) WHERE hold_id IS NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `held_tokens` integer DEFAULT 0 NOT NULL;