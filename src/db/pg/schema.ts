/**
 * The briefs app's data model (docs/architecture.md, "Data model") for PostgreSQL. Balances and ledger amounts are bigint
 * (read as JavaScript numbers: the tool keeps them at or under 2^53−1). Keep it in step with
 * ../sqlite/schema.ts: a test compares both with their migrations.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();

export const users = pgTable(
  "users",
  {
    id: text("id").primaryKey(),
    email: text("email").notNull(),
    name: text("name").notNull(),
    tokenBalance: bigint("token_balance", { mode: "number" }).notNull().default(0),
    /** Sum of the amounts of this user's holds in status 'active' (expired or not): see token_holds. */
    heldTokens: bigint("held_tokens", { mode: "number" }).notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("users_email_unique").on(t.email),
    check("users_token_balance_range", sql`${t.tokenBalance} >= 0 AND ${t.tokenBalance} <= 9007199254740991`),
  ],
);

export const models = pgTable(
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

export const briefs = pgTable(
  "briefs",
  {
    id: text("id").primaryKey(),
    slug: text("slug").notNull(),
    title: text("title").notNull(),
    content: text("content").notNull(),
    userId: text("user_id").notNull().references(() => users.id),
    modelId: text("model_id").notNull().references(() => models.id),
    published: boolean("published").notNull().default(false),
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

export const reviews = pgTable(
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
export const tokenHolds = pgTable(
  "token_holds",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull().references(() => users.id),
    amount: bigint("amount", { mode: "number" }).notNull(),
    status: text("status", { enum: ["active", "captured", "released", "expired"] }).notNull(),
    capturedAmount: bigint("captured_amount", { mode: "number" }),
    reason: text("reason").notNull(),
    briefId: text("brief_id").references(() => briefs.id),
    idempotencyKey: text("idempotency_key"),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    createdAt: createdAt(),
    settledAt: timestamp("settled_at", { withTimezone: true, mode: "date" }),
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

export const tokenTransactions = pgTable(
  "token_transactions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull().references(() => users.id),
    amount: bigint("amount", { mode: "number" }).notNull(),
    type: text("type", { enum: ["credit", "deduct"] }).notNull(),
    reason: text("reason").notNull(),
    briefId: text("brief_id").references(() => briefs.id),
    balanceAfter: bigint("balance_after", { mode: "number" }).notNull(),
    idempotencyKey: text("idempotency_key"),
    /** The hold this row captured (type deduct); at most one row per hold. */
    holdId: text("hold_id").references(() => tokenHolds.id),
    /**
     * Stamped when the row is inserted, not when its transaction began (now()): an insert that
     * follows its user's row lock, as every writer's does, sorts in the order rows were applied
     * (briefdb's statements stamp clock_timestamp() themselves; this is for SQL that leaves it out).
     */
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().default(sql`clock_timestamp()`),
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
export const queryLog = pgTable(
  "query_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    name: text("name").notNull(),
    durationMs: doublePrecision("duration_ms").notNull(),
    failed: boolean("failed").notNull().default(false),
    recordedAt: timestamp("recorded_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    index("query_log_name_recorded_at_idx").on(t.name, t.recordedAt),
    index("query_log_recorded_at_idx").on(t.recordedAt),
  ],
);
