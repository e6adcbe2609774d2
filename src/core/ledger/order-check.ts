/**
 * The ledger's order, checked against the data (by `tokens verify`): a user's ledger read in
 * history order (created_at, then id) is the order its rows were applied, so each row's
 * balance_after is the running sum of the amounts up to it. Rows stamped before the database
 * applied migration 0003_ledger_stamped_at_insert (ledgerOrderedSince) may break it without
 * anything being wrong with the balance: the briefdb that ran before it stamped a PostgreSQL row
 * before it waited for the user's row lock, on SQLite broke a one-millisecond tie between two
 * connections by an id made at the call, and the PostgreSQL column's default (an app's own SQL)
 * was now(), the transaction's start. Those are told apart (legacy) and do not fail the check;
 * any row since does.
 *
 * Why 0003 and not 0001_ledger_history_order: 0001 only added id to the ledger's index, and the
 * briefdb releases that carried it still stamped out of order; 0003 ships with the briefdb that
 * stamps inside the lock, and is itself the change for an app's SQL that leaves created_at out.
 * The cutoff is per database (when it applied 0003), never a fixed date: a database upgraded
 * later has older rows after any date briefdb could name.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { dateFromEpochMs } from "../../db/inspection.js";
import { BriefdbError } from "../../errors.js";
import { migrateHint } from "../migrate/hint.js";
import { migrationAppliedAt } from "../migrate/records.js";

/** The migration from whose application on a database its ledger rows are stamped in apply order. */
export const LEDGER_ORDER_MIGRATION = "0003_ledger_stamped_at_insert";

/**
 * When this database applied LEDGER_ORDER_MIGRATION: rows stamped before it are legacy.
 * NOT_MIGRATED when it has not (or has no migration records): its out-of-order rows could be
 * neither excused nor blamed, and calling them all legacy would pass a ledger nobody checked.
 */
export async function ledgerOrderedSince(db: BriefDatabase): Promise<Date> {
  const appliedAt = await migrationAppliedAt(db, LEDGER_ORDER_MIGRATION);
  if (appliedAt !== undefined) return appliedAt;
  throw new BriefdbError(
    "NOT_MIGRATED",
    `${db.target.display} has not applied migration ${LEDGER_ORDER_MIGRATION}, from which its ledger is stamped in history order: out-of-order rows cannot be told from legacy ones`,
    migrateHint(db.target),
  );
}

export interface LedgerOutOfOrder {
  readonly userId: string;
  /** How many of the user's rows show a balance_after that is not the running sum in history order. */
  readonly rows: number;
  /** The earliest and latest such row's created_at. */
  readonly firstAt: Date;
  readonly lastAt: Date;
  /** Every such row was stamped before the database applied LEDGER_ORDER_MIGRATION (ledgerOrderedSince): reported, not a violation. */
  readonly legacy: boolean;
}

/**
 * Each user with rows whose balance_after is not the running balance in history order; legacy
 * when all of them were stamped before `orderedSince` (default: ledgerOrderedSince(db)).
 */
export async function checkLedgerOrder(db: BriefDatabase, orderedSince?: Date): Promise<LedgerOutOfOrder[]> {
  const since = orderedSince ?? (await ledgerOrderedSince(db));
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
    return { userId: row.user_id, rows: Number(row.n), firstAt: dateFromEpochMs(row.first_ms), lastAt, legacy: lastAt < since };
  });
}
