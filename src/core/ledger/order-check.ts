/**
 * The ledger's order, checked against the data (by `tokens verify`): a user's ledger read in
 * history order (created_at, then id) is the order its rows were applied, so each row's
 * balance_after is the running sum of the amounts up to it. Rows stamped before
 * LEDGER_ORDERED_SINCE may break it without anything being wrong with the balance: briefdb then
 * stamped a PostgreSQL row before it waited for the user's row lock, and on SQLite broke a
 * one-millisecond tie between two connections by an id made at the call. Those are told apart
 * (legacy) and do not fail the check; any row since does.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { dateFromEpochMs } from "../../db/inspection.js";

/** From this instant both dialects stamp every ledger row in the order it was applied. */
export const LEDGER_ORDERED_SINCE = new Date("2026-12-06T00:00:00Z");

export interface LedgerOutOfOrder {
  readonly userId: string;
  /** How many of the user's rows show a balance_after that is not the running sum in history order. */
  readonly rows: number;
  /** The earliest and latest such row's created_at. */
  readonly firstAt: Date;
  readonly lastAt: Date;
  /** Every such row was stamped before LEDGER_ORDERED_SINCE: reported, not a violation. */
  readonly legacy: boolean;
}

/** Each user with rows whose balance_after is not the running balance in history order. */
export async function checkLedgerOrder(db: BriefDatabase): Promise<LedgerOutOfOrder[]> {
  const rows = await db.all<{ user_id: string; n: number | string; first_ms: number | string; last_ms: number | string }>(sql`
    SELECT user_id, COUNT(*) AS n, MIN(${db.time.epochMs(sql`created_at`)}) AS first_ms, MAX(${db.time.epochMs(sql`created_at`)}) AS last_ms
    FROM (
      SELECT user_id, created_at, balance_after,
        SUM(amount) OVER (PARTITION BY user_id ORDER BY created_at, id ROWS UNBOUNDED PRECEDING) AS running
      FROM token_transactions
    ) t
    WHERE running <> balance_after
    GROUP BY user_id
    ORDER BY user_id`);
  return rows.map((row) => {
    const lastAt = dateFromEpochMs(row.last_ms);
    return { userId: row.user_id, rows: Number(row.n), firstAt: dateFromEpochMs(row.first_ms), lastAt, legacy: lastAt < LEDGER_ORDERED_SINCE };
  });
}
