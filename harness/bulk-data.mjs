/**
 * Deterministic rows in bulk — for the listing queries and for the query log — each table written
 * by one INSERT … SELECT from a recursive CTE (both dialects run it), so a million briefs take
 * seconds, not a million round trips. Shared by the tests (exact expected values below) and
 * bench/queries.mjs. This is not the seed command: no opening credits, no ledger invariant;
 * throw-away data only. Plain JavaScript typed with JSDoc (see harness/postgres.mjs).
 */
import { sql } from "drizzle-orm";

/** @typedef {import("../src/index.js").BriefDatabase} BriefDatabase */

export const BASE_MS = Date.UTC(2025, 0, 1);
export const MINUTE_MS = 60_000;

/** The formulas the INSERTs use, for tests that compute what a listing must return. */
export const expected = {
  /** @param {number} i @param {number} users */
  briefUser: (i, users) => `user-${1 + (i % users)}`,
  /** @param {number} i */
  published: (i) => i % 3 !== 0,
  /** @param {number} i */
  viewCount: (i) => (i * 7919) % 10007,
  /** @param {number} i */
  createdAt: (i) => new Date(BASE_MS + i * MINUTE_MS),
  /** @param {number} i @param {number} briefs */
  reviewBrief: (i, briefs) => `brief-${1 + (i % briefs)}`,
  /** @param {number} i @param {number} users */
  ledgerUser: (i, users) => `user-${1 + (i % users)}`,
  /** @param {number} i */
  ledgerAmount: (i) => 1 + (i % 100),
};

/**
 * Numbers 1..count, as a subquery named n with one bigint column i.
 * @param {number} count
 */
function series(count) {
  return sql`(WITH RECURSIVE s(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < ${int(count)}) SELECT i FROM s) AS n`;
}

/**
 * An integer literal: better-sqlite3 binds every JS number as a double, and 'user-' || 3.0 is not 'user-3'.
 * @param {number} value
 */
function int(value) {
  if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
  return sql.raw(String(value));
}

/**
 * Fills users, models, briefs, reviews and token_transactions of a migrated, empty database.
 * @param {BriefDatabase} db
 * @param {{ users: number, briefs: number, reviews: number, transactions: number }} sizes
 */
export async function fillListingData(db, sizes) {
  /** @param {string} i an SQL expression */
  const at = (i) => db.time.fromEpochMs(sql`${int(BASE_MS)} + ${sql.raw(i)} * ${int(MINUTE_MS)}`);
  await db.run(sql`INSERT INTO users (id, email, name, token_balance, created_at, updated_at)
    SELECT 'user-' || i, 'user-' || i || '@example.test', 'User ' || i, 0, ${at("0")}, ${at("0")} FROM ${series(sizes.users)}`);
  await db.run(sql`INSERT INTO models (id, name, provider, slug, created_at)
    SELECT 'model-' || i, 'Model ' || i, 'provider', 'model-' || i, ${at("0")} FROM ${series(2)}`);
  await db.run(sql`INSERT INTO briefs (id, slug, title, content, user_id, model_id, published, view_count, created_at, updated_at)
    SELECT 'brief-' || i, 'brief-' || i, 'Brief ' || i, 'Content of brief ' || i, 'user-' || (1 + i % ${int(sizes.users)}),
           'model-' || (1 + i % 2), (i % 3 <> 0), (i * 7919) % 10007, ${at("i")}, ${at("i")}
    FROM ${series(sizes.briefs)}`);
  await db.run(sql`INSERT INTO reviews (id, brief_id, user_id, rating, comment, created_at)
    SELECT 'review-' || i, 'brief-' || (1 + i % ${int(sizes.briefs)}), 'user-' || (1 + i % ${int(sizes.users)}), 1 + i % 5, 'ok', ${at("i")}
    FROM ${series(sizes.reviews)}`);
  await db.run(sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, created_at)
    SELECT 'tx-' || i, 'user-' || (1 + i % ${int(sizes.users)}), 1 + i % 100, 'credit', 'listing data', NULL, i, NULL, ${at("i")}
    FROM ${series(sizes.transactions)}`);
}

/**
 * Samples in the query log: durations firstMs, firstMs + 1, … firstMs + count − 1 in a scrambled
 * order (7919 is a prime that divides no count used here), the i-th recorded at atMs + i seconds,
 * every failedEvery-th marked failed.
 * @param {BriefDatabase} db
 * @param {{ name: string, count: number, firstMs: number, atMs: number, failedEvery?: number }} samples
 */
export async function fillQueryLog(db, { name, count, firstMs, atMs, failedEvery = 0 }) {
  const failed = failedEvery > 0 ? sql`(i % ${int(failedEvery)} = 0)` : sql`(1 = 0)`;
  await db.run(sql`INSERT INTO query_log (name, duration_ms, failed, recorded_at)
    SELECT ${name}, ${int(firstMs)} + (i * 7919) % ${int(count)}, ${failed}, ${db.time.fromEpochMs(sql`${int(atMs)} + i * 1000`)}
    FROM ${series(count)}`);
}
