/**
 * The briefs app's data model (docs/architecture.md, "Data model") for SQLite. Timestamps are epoch milliseconds; booleans
 * are 0/1. Keep it in step with ../pg/schema.ts: a test compares both with their migrations.
 */
import { sql } from "drizzle-orm";
import { check, index, integer, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const createdAt = () => integer("created_at", { mode: "timestamp_ms" }).notNull();
const updatedAt = () => integer("updated_at", { mode: "timestamp_ms" }).notNull();

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    email: text("email").notNull(),
    name: text("name").notNull(),
    tokenBalance: integer("token_balance").notNull().default(0),
    /** Sum of the amounts of this user's holds in status 'active' (expired or not): see token_holds. */
    heldTokens: integer("held_tokens").notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("users_email_unique").on(t.email),
    check("users_token_balance_range", sql`${t.tokenBalance} >= 0 AND ${t.tokenBalance} <= 9007199254740991`),
  ],
);

export const models = sqliteTable(
  "models",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    provider: text("provider").notNull(),
    slug: text("slug").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("models_slug_unique").on(t.slug)],
);

export const briefs = sqliteTable(
  "briefs",
  {
    id: text("id").primaryKey(),
    slug: text("slug").notNull(),
    title: text("title").notNull(),
    content: text("content").notNull(),
    userId: text("user_id").notNull().references(() => users.id),
    modelId: text("model_id").notNull().references(() => models.id),
    published: integer("published", { mode: "boolean" }).notNull().default(false),
    viewCount: integer("view_count").notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("briefs_slug_unique").on(t.slug),
    index("briefs_view_count_idx").on(t.viewCount),
    index("briefs_created_at_idx").on(t.createdAt),
    index("briefs_published_idx").on(t.published),
    index("briefs_user_id_idx").on(t.userId),
    index("briefs_model_id_idx").on(t.modelId),
    index("briefs_published_view_count_idx").on(t.published, t.viewCount),
    index("briefs_published_created_at_idx").on(t.published, t.createdAt),
    index("briefs_user_id_created_at_idx").on(t.userId, t.createdAt),
    check("briefs_view_count_nonnegative", sql`${t.viewCount} >= 0`),
  ],
);

export const reviews = sqliteTable(
  "reviews",
  {
    id: text("id").primaryKey(),
    briefId: text("brief_id").notNull().references(() => briefs.id),
    userId: text("user_id").notNull().references(() => users.id),
    rating: integer("rating").notNull(),
    comment: text("comment"),
    createdAt: createdAt(),
  },
  (t) => [
    index("reviews_brief_id_idx").on(t.briefId),
    index("reviews_user_id_idx").on(t.userId),
    index("reviews_rating_idx").on(t.rating),
    index("reviews_created_at_idx").on(t.createdAt),
    index("reviews_brief_id_created_at_idx").on(t.briefId, t.createdAt),
    check("reviews_rating_range", sql`${t.rating} BETWEEN 1 AND 5`),
  ],
);

/**
 * Token holds (reservations): tokens set aside before work whose cost is known only afterwards,
 * then captured (one deduct ledger row naming the hold), released, or left to expire. A hold
 * counts against the user's available balance while it is 'active' and before expires_at; an
 * expired hold stops counting at that instant without being written ('expired' is recorded
 * lazily, when a write needs the room). users.held_tokens is the sum of the 'active' holds.
 */
export const tokenHolds = sqliteTable(
  "token_holds",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull().references(() => users.id),
    amount: integer("amount").notNull(),
    status: text("status", { enum: ["active", "captured", "released", "expired"] }).notNull(),
    capturedAmount: integer("captured_amount"),
    reason: text("reason").notNull(),
    briefId: text("brief_id").references(() => briefs.id),
    idempotencyKey: text("idempotency_key"),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    createdAt: createdAt(),
    settledAt: integer("settled_at", { mode: "timestamp_ms" }),
  },
  (t) => [
    // "available" in one indexed read: the user's active holds, soonest expiry first, amounts in the index
    index("token_holds_active_user_idx").on(t.userId, t.expiresAt, t.amount).where(sql`status = 'active'`),
    index("token_holds_user_id_idx").on(t.userId),
    // partial: most holds name no brief and carry no key, and a NULL needs no index entry
    index("token_holds_brief_id_idx").on(t.briefId).where(sql`brief_id IS NOT NULL`),
    uniqueIndex("token_holds_idempotency_key_unique").on(t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
    check("token_holds_amount_positive", sql`${t.amount} > 0`),
    check("token_holds_status_known", sql`${t.status} IN ('active', 'captured', 'released', 'expired')`),
    check(
      "token_holds_capture_within_hold",
      sql`(${t.status} = 'captured') = (${t.capturedAmount} IS NOT NULL) AND (${t.capturedAmount} IS NULL OR (${t.capturedAmount} > 0 AND ${t.capturedAmount} <= ${t.amount}))`,
    ),
    check("token_holds_settled_when_not_active", sql`(${t.status} = 'active') = (${t.settledAt} IS NULL)`),
  ],
);

export const tokenTransactions = sqliteTable(
  "token_transactions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull().references(() => users.id),
    amount: integer("amount").notNull(),
    type: text("type", { enum: ["credit", "deduct"] }).notNull(),
    reason: text("reason").notNull(),
    briefId: text("brief_id").references(() => briefs.id),
    balanceAfter: integer("balance_after").notNull(),
    idempotencyKey: text("idempotency_key"),
    /** The hold this row captured (type deduct); at most one row per hold. */
    holdId: text("hold_id").references(() => tokenHolds.id),
    createdAt: createdAt(),
  },
  (t) => [
    index("token_transactions_user_id_idx").on(t.userId),
    index("token_transactions_created_at_idx").on(t.createdAt),
    index("token_transactions_brief_id_idx").on(t.briefId),
    // id breaks ties between rows of one instant, so a user's history has one order
    index("token_transactions_user_id_created_at_idx").on(t.userId, t.createdAt, t.id),
    uniqueIndex("token_transactions_idempotency_key_unique").on(t.idempotencyKey),
    // partial: plain credits and deducts (the hot path) write no entry here
    uniqueIndex("token_transactions_hold_id_unique").on(t.holdId).where(sql`hold_id IS NOT NULL`),
    check(
      "token_transactions_amount_sign",
      sql`(${t.type} = 'credit' AND ${t.amount} > 0) OR (${t.type} = 'deduct' AND ${t.amount} < 0)`,
    ),
    check("token_transactions_balance_after_nonnegative", sql`${t.balanceAfter} >= 0`),
  ],
);

/** Samples recorded by monitorQuery at or over the warn threshold; read by `slow-queries`. */
export const queryLog = sqliteTable(
  "query_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    name: text("name").notNull(),
    durationMs: real("duration_ms").notNull(),
    failed: integer("failed", { mode: "boolean" }).notNull().default(false),
    recordedAt: integer("recorded_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [
    index("query_log_name_recorded_at_idx").on(t.name, t.recordedAt),
    index("query_log_recorded_at_idx").on(t.recordedAt),
  ],
);
