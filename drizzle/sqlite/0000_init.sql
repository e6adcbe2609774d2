CREATE TABLE `briefs` (
	`id` text PRIMARY KEY NOT NULL,
	`slug` text NOT NULL,
	`title` text NOT NULL,
	`content` text NOT NULL,
	`user_id` text NOT NULL,
	`model_id` text NOT NULL,
	`published` integer DEFAULT false NOT NULL,
	`view_count` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`model_id`) REFERENCES `models`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "briefs_view_count_nonnegative" CHECK("briefs"."view_count" >= 0)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `briefs_slug_unique` ON `briefs` (`slug`);--> statement-breakpoint
CREATE INDEX `briefs_view_count_idx` ON `briefs` (`view_count`);--> statement-breakpoint
CREATE INDEX `briefs_created_at_idx` ON `briefs` (`created_at`);--> statement-breakpoint
CREATE INDEX `briefs_published_idx` ON `briefs` (`published`);--> statement-breakpoint
CREATE INDEX `briefs_user_id_idx` ON `briefs` (`user_id`);--> statement-breakpoint
CREATE INDEX `briefs_model_id_idx` ON `briefs` (`model_id`);--> statement-breakpoint
CREATE INDEX `briefs_published_view_count_idx` ON `briefs` (`published`,`view_count`);--> statement-breakpoint
CREATE INDEX `briefs_published_created_at_idx` ON `briefs` (`published`,`created_at`);--> statement-breakpoint
CREATE INDEX `briefs_user_id_created_at_idx` ON `briefs` (`user_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `models` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`provider` text NOT NULL,
	`slug` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `models_slug_unique` ON `models` (`slug`);--> statement-breakpoint
CREATE TABLE `query_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`duration_ms` real NOT NULL,
	`failed` integer DEFAULT false NOT NULL,
	`recorded_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `query_log_name_recorded_at_idx` ON `query_log` (`name`,`recorded_at`);--> statement-breakpoint
CREATE INDEX `query_log_recorded_at_idx` ON `query_log` (`recorded_at`);--> statement-breakpoint
CREATE TABLE `reviews` (
	`id` text PRIMARY KEY NOT NULL,
	`brief_id` text NOT NULL,
	`user_id` text NOT NULL,
	`rating` integer NOT NULL,
	`comment` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`brief_id`) REFERENCES `briefs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "reviews_rating_range" CHECK("reviews"."rating" BETWEEN 1 AND 5)
);
--> statement-breakpoint
CREATE INDEX `reviews_brief_id_idx` ON `reviews` (`brief_id`);--> statement-breakpoint
CREATE INDEX `reviews_user_id_idx` ON `reviews` (`user_id`);--> statement-breakpoint
CREATE INDEX `reviews_rating_idx` ON `reviews` (`rating`);--> statement-breakpoint
CREATE INDEX `reviews_created_at_idx` ON `reviews` (`created_at`);--> statement-breakpoint
CREATE INDEX `reviews_brief_id_created_at_idx` ON `reviews` (`brief_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `token_transactions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`amount` integer NOT NULL,
	`type` text NOT NULL,
	`reason` text NOT NULL,
	`brief_id` text,
	`balance_after` integer NOT NULL,
	`idempotency_key` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`brief_id`) REFERENCES `briefs`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "token_transactions_amount_sign" CHECK(("token_transactions"."type" = 'credit' AND "token_transactions"."amount" > 0) OR ("token_transactions"."type" = 'deduct' AND "token_transactions"."amount" < 0)),
	CONSTRAINT "token_transactions_balance_after_nonnegative" CHECK("token_transactions"."balance_after" >= 0)
);
--> statement-breakpoint
CREATE INDEX `token_transactions_user_id_idx` ON `token_transactions` (`user_id`);--> statement-breakpoint
CREATE INDEX `token_transactions_created_at_idx` ON `token_transactions` (`created_at`);--> statement-breakpoint
CREATE INDEX `token_transactions_brief_id_idx` ON `token_transactions` (`brief_id`);--> statement-breakpoint
CREATE INDEX `token_transactions_user_id_created_at_idx` ON `token_transactions` (`user_id`,`created_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `token_transactions_idempotency_key_unique` ON `token_transactions` (`idempotency_key`);--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`email` text NOT NULL,
	`name` text NOT NULL,
	`token_balance` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "users_token_balance_range" CHECK("users"."token_balance" >= 0 AND "users"."token_balance" <= 9007199254740991)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);