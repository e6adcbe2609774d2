/**
 * The token hot path on PostgreSQL: the conditional UPDATE and the ledger INSERT as ONE statement
 * (a data-modifying CTE), so a deduct is one round trip and atomic without an explicit
 * transaction. postgres.js prepares it once per connection. If the INSERT fails (a taken
 * idempotency key), the UPDATE rolls back with it. An abort while the statement is in flight sends
 * the protocol's cancel request and waits for the statement's own answer: cancelled (57014,
 * nothing changed) or committed first (the entry).
 */
import type postgres from "postgres";
import type { ApplyOptions, BalanceChange, LedgerEntry, LedgerStatements } from "../database.js";
import { dateFromEpochMs } from "../inspection.js";
import { ledgerEntryFromRow, ledgerEntryOf, type LedgerRow } from "../ledger-row.js";

const CREATED_AT_MS = "(extract(epoch from created_at) * 1000)::float8 AS created_at_ms";
const RETURNED = `id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, hold_id, ${CREATED_AT_MS}`;

function applyStatement(newBalance: string, guard: string, sign: "" | "-", type: string): string {
  return `WITH changed AS (
    UPDATE users SET token_balance = ${newBalance}, updated_at = now()
    WHERE id = $2 AND ${guard}
    RETURNING token_balance
  )
  INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, created_at)
  SELECT $1, $2, ${sign}$3::bigint, '${type}', $4, $5, changed.token_balance, $6, now() FROM changed
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
const CREDIT = applyStatement(
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
      const statement = change.operation === "deduct" ? PG_DEDUCT_STATEMENT : CREDIT;
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

/**
 * Awaits `query`; aborting `signal` meanwhile sends the cancel request for it (a hold write's too,
 * ./holds.ts), and the query's own answer is what resolves or rejects: cancelled, or committed first.
 */
export async function cancellable<T>(query: Promise<T> & { cancel(): void }, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return query;
  const cancel = () => cancelOnServer(query);
  signal.addEventListener("abort", cancel, { once: true });
  try {
    return await query;
  } finally {
    signal.removeEventListener("abort", cancel);
  }
}

/**
 * Sends the cancel request for `query` (or takes it off the queue if it was not sent). postgres.js's
 * own `query.cancel()` drops the promise of that request, which rejects unhandled (and ends the
 * process) when the server cannot be reached for it; here it is caught: the query itself then
 * fails with the lost connection, which is what the caller reads.
 */
function cancelOnServer(query: { cancel(): void }): void {
  const internal = query as unknown as { canceller?: ((q: unknown) => Promise<void>) | null };
  const canceller = internal.canceller;
  if (typeof canceller !== "function") {
    query.cancel();
    return;
  }
  internal.canceller = null;
  canceller(query).catch(() => {});
}
