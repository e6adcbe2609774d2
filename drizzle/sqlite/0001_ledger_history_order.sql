DROP INDEX `token_transactions_user_id_created_at_idx`;--> statement-breakpoint
CREATE INDEX `token_transactions_user_id_created_at_idx` ON `token_transactions` (`user_id`,`created_at`,`id`);