/**
 * Token holds on PostgreSQL: every write is ONE statement (data-modifying CTEs), one round trip,
 * atomic on its own, prepared once per connection.
 *
 * Why this is safe under READ COMMITTED: a statement's sub-selects read the snapshot taken when it
 * started, but the rows an UPDATE changes are re-read at their newest committed version after a
 * lock wait (and its WHERE re-checked). So every decision here is made on a row the statement
 * updates: "is there room" on the user row (token_balance − held_tokens, which every hold write
 * keeps current in the same statement), "is the hold still active" on the hold row. Nothing is
 * decided on a sub-select over another table.
 *
 * Lock order, to stay free of deadlocks: a statement that changes hold rows and the user row locks
 * the hold rows first (the user update reads from the hold CTE, so it runs after it) and the user
 * row last; the sweep locks its holds in id order. One exception: a deduct in the app's own
 * transaction that sweeps holds there may wait for a hold row while it holds the user row; a
 * capture or release that deadlocks with it is rolled back and run again (core/holds.ts).
 *
 * Time is statement_timestamp(): the server's clock when the statement began — except a capture's
 * ledger row, stamped with clock_timestamp() once the statement holds its locks (see ./ledger.ts).
 */
import { sql } from "drizzle-orm";
import type postgres from "postgres";
import { dateFromEpochMs } from "../inspection.js";
import { holdFromRow, type CapturedHold, type HoldRow, type HoldStatements } from "../holds.js";
import { cancellable } from "./cancel.js";

const ms = (column: string, as: string) => `(extract(epoch from ${column}) * 1000)::float8 AS ${as}`;
const HOLD_COLUMNS = `h.id, h.user_id, h.amount, h.status, h.captured_amount, h.reason, h.brief_id, h.idempotency_key,
  ${ms("h.expires_at", "expires_at_ms")}, ${ms("h.created_at", "created_at_ms")}, ${ms("h.settled_at", "settled_at_ms")}`;

/**
 * The one statement a hold runs on PostgreSQL: $1 hold id, $2 user id, $3 amount, $4 reason,
 * $5 brief id, $6 idempotency key, $7 TTL in seconds. Public, as PG_DEDUCT_STATEMENT is, so that
 * the benchmark's pgbench baseline runs the very same statement.
 */
export const PG_HOLD_STATEMENT = `WITH u AS (
    UPDATE users SET held_tokens = held_tokens + $3::bigint, updated_at = statement_timestamp()
    WHERE id = $2 AND token_balance - held_tokens >= $3::bigint
    RETURNING token_balance, held_tokens
  ), h AS (
    INSERT INTO token_holds (id, user_id, amount, status, reason, brief_id, idempotency_key, expires_at, created_at)
    SELECT $1, $2, $3::bigint, 'active', $4, $5, $6, statement_timestamp() + $7::int * interval '1 second', statement_timestamp() FROM u
    RETURNING *
  )
  SELECT ${HOLD_COLUMNS}, u.token_balance, u.held_tokens,
    -- only when other holds are active can one of them have expired
    CASE WHEN u.held_tokens > $3::bigint THEN (SELECT COALESCE(sum(e.amount), 0) FROM token_holds e
      WHERE e.user_id = $2 AND e.status = 'active' AND e.expires_at <= statement_timestamp()) ELSE 0 END AS expired_held
  FROM h, u`;

/** The one statement a capture runs: $1 hold id, $2 amount (null: all of it), $3 new ledger row id. Public, as above. */
export const PG_CAPTURE_STATEMENT = `WITH h AS (
    UPDATE token_holds SET status = 'captured', captured_amount = COALESCE($2::bigint, amount), settled_at = statement_timestamp()
    WHERE id = $1 AND status = 'active' AND expires_at > statement_timestamp() AND amount >= COALESCE($2::bigint, amount)
    RETURNING *
  ), u AS (
    UPDATE users SET token_balance = token_balance - h.captured_amount, held_tokens = held_tokens - h.amount, updated_at = statement_timestamp()
    FROM h WHERE users.id = h.user_id
    RETURNING users.token_balance
  ), t AS (
    INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, hold_id, created_at)
    SELECT $3, h.user_id, -h.captured_amount, 'deduct', h.reason, h.brief_id, u.token_balance, NULL, h.id, clock_timestamp() FROM h, u
    RETURNING balance_after, created_at
  )
  SELECT ${HOLD_COLUMNS}, t.balance_after, ${ms("t.created_at", "ledger_created_at_ms")} FROM h, t`;

// $1 hold
const RELEASE = `WITH h AS (
    UPDATE token_holds SET status = CASE WHEN expires_at > statement_timestamp() THEN 'released' ELSE 'expired' END,
      settled_at = statement_timestamp()
    WHERE id = $1 AND status = 'active'
    RETURNING *
  ), u AS (
    UPDATE users SET held_tokens = held_tokens - h.amount, updated_at = statement_timestamp()
    FROM h WHERE users.id = h.user_id
    RETURNING users.id
  )
  SELECT ${HOLD_COLUMNS} FROM h, u`;

// $1 user
const SWEEP = `WITH due AS (
    SELECT id FROM token_holds
    WHERE user_id = $1 AND status = 'active' AND expires_at <= statement_timestamp()
    ORDER BY id FOR NO KEY UPDATE
  ), swept AS (
    UPDATE token_holds t SET status = 'expired', settled_at = statement_timestamp()
    FROM due WHERE t.id = due.id AND t.status = 'active'
    RETURNING t.amount
  ), freed AS (
    SELECT COALESCE(sum(amount), 0)::bigint AS total, count(*) AS n FROM swept
  )
  UPDATE users SET held_tokens = held_tokens - freed.total, updated_at = statement_timestamp()
  FROM freed WHERE users.id = $1 AND freed.n > 0
  RETURNING freed.n`;

/** A number as postgres.js returns it: bigint and numeric columns come as strings. */
export type Num = number | string;

/** A captured hold and its ledger row, from a row of the hold's columns, balance_after and ledger_created_at_ms. */
export function capturedFromRow(row: HoldRow & { balance_after: Num; ledger_created_at_ms: Num }, ledgerId: string): CapturedHold {
  const hold = holdFromRow(row);
  const entry = {
    id: ledgerId,
    userId: hold.userId,
    amount: -(hold.capturedAmount ?? hold.amount),
    type: "deduct" as const,
    reason: hold.reason,
    briefId: hold.briefId,
    balanceAfter: Number(row.balance_after),
    idempotencyKey: null,
    holdId: hold.id,
    createdAt: dateFromEpochMs(row.ledger_created_at_ms),
  };
  return { hold, entry };
}

export function pgHolds(client: postgres.Sql, prepare: boolean): HoldStatements {
  const options = { prepare };
  return {
    clock: sql`statement_timestamp()`,

    async place(hold, { signal } = {}) {
      const query = client.unsafe<Array<HoldRow & { token_balance: Num; held_tokens: Num; expired_held: Num }>>(
        PG_HOLD_STATEMENT,
        [hold.id, hold.userId, hold.amount, hold.reason, hold.briefId, hold.idempotencyKey, hold.ttlSeconds],
        options,
      );
      const [row] = await cancellable(query, signal);
      if (row === undefined) return undefined;
      // held_tokens still counts holds that expired but are not swept yet; they no longer hold
      return { hold: holdFromRow(row), balance: Number(row.token_balance), held: Number(row.held_tokens) - Number(row.expired_held) };
    },

    async capture(holdId, amount, ledgerId, { signal } = {}) {
      const query = client.unsafe<Array<HoldRow & { balance_after: Num; ledger_created_at_ms: Num }>>(
        PG_CAPTURE_STATEMENT,
        [holdId, amount, ledgerId],
        options,
      );
      const [row] = await cancellable(query, signal);
      return row === undefined ? undefined : capturedFromRow(row, ledgerId);
    },

    async release(holdId, { signal } = {}) {
      const [row] = await cancellable(client.unsafe<HoldRow[]>(RELEASE, [holdId], options), signal);
      return row === undefined ? undefined : holdFromRow(row);
    },

    async sweepExpired(userId) {
      const [row] = await client.unsafe<Array<{ n: Num }>>(SWEEP, [userId], options);
      return row === undefined ? 0 : Number(row.n);
    },
  };
}
