/**
 * The token hot path on PostgreSQL: the conditional UPDATE and the ledger INSERT as ONE statement
 * (a data-modifying CTE), so a deduct is one round trip and atomic without an explicit
 * transaction, prepared once per connection. Why the row is stamped with clock_timestamp(), and
 * what an abort does: docs/architecture.md, "The contract" (Invariants) and "How a request flows".
 */
import type postgres from "postgres";
import type { LedgerStatements } from "../database.js";
import { dateFromEpochMs } from "../inspection.js";
import type { ApplyOptions, BalanceChange, LedgerEntry } from "../ledger-values.js";
import { ledgerEntryFromRow, ledgerEntryOf, type LedgerRow } from "../ledger-row.js";
import { cancellable } from "./cancel.js";

const CREATED_AT_MS = "(extract(epoch from created_at) * 1000)::float8 AS created_at_ms";
export const RETURNED = `id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, hold_id, ${CREATED_AT_MS}`;

function applyStatement(newBalance: string, guard: string, sign: "" | "-", type: string): string {
  return `WITH changed AS (
    UPDATE users SET token_balance = ${newBalance}, updated_at = now()
    WHERE id = $2 AND ${guard}
    RETURNING token_balance
  )
  INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, created_at)
  SELECT $1, $2, ${sign}$3::bigint, '${type}', $4, $5, changed.token_balance, $6, clock_timestamp() FROM changed
  RETURNING balance_after, ${CREATED_AT_MS}`;
}

/**
 * The one statement a deduct runs on PostgreSQL, as postgres.js receives it: $1 new ledger id,
 * $2 user id, $3 amount, $4 reason, $5 brief id, $6 idempotency key. Public so that benchmarks
 * can run the very same statement without briefdb (pgbench, the bare driver). Held tokens are not
 * the deduct's to take: the user row carries their sum, so this stays one statement that a
 * concurrent hold or capture cannot slip past (see ./holds.ts).
 */
export const PG_DEDUCT_STATEMENT = applyStatement("token_balance - $3::bigint", "token_balance - held_tokens >= $3::bigint", "-", "deduct");
export const PG_CREDIT_STATEMENT = applyStatement(
  "token_balance + $3::bigint",
  `token_balance <= ${Number.MAX_SAFE_INTEGER} - $3::bigint`,
  "",
  "credit",
);
const BY_KEY = `SELECT ${RETURNED} FROM token_transactions WHERE idempotency_key = $1`;

export function pgLedger(client: postgres.Sql, prepare: boolean): LedgerStatements {
  const options = { prepare };
  return {
    async apply(change: BalanceChange, { signal }: ApplyOptions = {}): Promise<LedgerEntry | undefined> {
      const statement = change.operation === "deduct" ? PG_DEDUCT_STATEMENT : PG_CREDIT_STATEMENT;
      const query = client.unsafe<Array<{ balance_after: string; created_at_ms: number }>>(
        statement,
        [change.id, change.userId, change.amount, change.reason, change.briefId, change.idempotencyKey],
        options,
      );
      const [row] = await cancellable(query, signal);
      if (row === undefined) return undefined;
      // only what the server decided comes back; the rest is what we sent (fewer bytes to parse)
      return ledgerEntryOf(change, Number(row.balance_after), dateFromEpochMs(row.created_at_ms));
    },

    async findByKey(key: string): Promise<LedgerEntry | undefined> {
      const rows = await client.unsafe<LedgerRow[]>(BY_KEY, [key], options);
      return rows[0] === undefined ? undefined : ledgerEntryFromRow(rows[0]);
    },
  };
}
