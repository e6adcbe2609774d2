/**
 * The token hot path on PostgreSQL: the conditional UPDATE and the ledger INSERT as ONE statement
 * (a data-modifying CTE), so a deduct is one round trip and atomic without an explicit
 * transaction. postgres.js prepares it once per connection. If the INSERT fails (a taken
 * idempotency key), the UPDATE rolls back with it. An abort while the statement is in flight sends
 * the protocol's cancel request and waits for the statement's own answer: cancelled (57014,
 * nothing changed) or committed first (the entry).
 */
import type postgres from "postgres";
import type { ApplyOptions, BalanceChange, BatchOutcome, LedgerEntry, LedgerStatements } from "../database.js";
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

/**
 * One change of a batch, as one statement with the same parameters as applyStatement: if its
 * idempotency key already has a row, that row ('replayed', nothing changed); else the guarded
 * UPDATE and its ledger INSERT ('applied'); else the balance the guard refused ('refused', in
 * balance_after, and the held tokens in amount; no row at all: no such user).
 */
function batchStatement(newBalance: string, guard: string, sign: "" | "-", type: string): string {
  return `WITH prior AS (
    SELECT ${RETURNED} FROM token_transactions WHERE idempotency_key = $6
  ), changed AS (
    UPDATE users SET token_balance = ${newBalance}, updated_at = now()
    WHERE id = $2 AND ${guard} AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING token_balance
  ), inserted AS (
    INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, created_at)
    SELECT $1, $2, ${sign}$3::bigint, '${type}', $4, $5, changed.token_balance, $6, now() FROM changed
    RETURNING ${RETURNED}
  )
  SELECT 'applied' AS outcome, * FROM inserted
  UNION ALL SELECT 'replayed', * FROM prior
  UNION ALL SELECT 'refused', NULL, NULL, held_tokens, NULL, NULL, NULL, token_balance, NULL, NULL, NULL FROM users
    WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM prior) AND NOT EXISTS (SELECT 1 FROM changed)`;
}
const BATCH_DEDUCT = batchStatement("token_balance - $3::bigint", "token_balance - held_tokens >= $3::bigint", "-", "deduct");
const BATCH_CREDIT = batchStatement(
  "token_balance + $3::bigint",
  `token_balance <= ${Number.MAX_SAFE_INTEGER} - $3::bigint`,
  "",
  "credit",
);

type BatchRow = LedgerRow & { readonly outcome: "applied" | "replayed" | "refused" };

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

/** Whether a failure is the whole batch's (every change gets it) rather than one change's own. */
export type SharedFailure = (error: unknown) => boolean;

/**
 * Applies a batch on PostgreSQL: one change alone is its one statement (one round trip, its own
 * transaction), and so are a few independent ones (ALONE_UP_TO); more go in one transaction, their statements pipelined (sent without waiting for
 * each other's answers: BEGIN, the batch, COMMIT: three round trips and one WAL flush for the
 * lot), each the batch statement above, in submission order, so that a change sees those before
 * it. When one change's statement fails on its own (a brief that does not exist, a key another
 * process took meanwhile), the transaction is rolled back; the changes
 * before it are run again as a transaction of their own, then those after it: no change ever fails
 * its neighbours, and each failure costs at most one more pass over the batch. A failure of the
 * whole (lost connection, deadlock, serialization failure, a lock waited for too long, a failed
 * BEGIN or COMMIT) is every change's, and core tries each again on its own where that is safe.
 */
export function pgApplyBatch(client: postgres.Sql, prepare: boolean, shared: SharedFailure, rolledBack: SharedFailure = () => false) {
  const options = { prepare };
  const statementOf = (change: BalanceChange) => (change.operation === "deduct" ? BATCH_DEDUCT : BATCH_CREDIT);
  const paramsOf = (change: BalanceChange) => [
    change.id,
    change.userId,
    change.amount,
    change.reason,
    change.briefId,
    change.idempotencyKey,
  ];
  const run = (sql: postgres.Sql | postgres.TransactionSql, change: BalanceChange) =>
    sql.unsafe<BatchRow[]>(statementOf(change), paramsOf(change), options);

  return async (changes: readonly BalanceChange[]): Promise<BatchOutcome[]> => {
    const outcomes: Array<BatchOutcome | undefined> = changes.map(() => undefined);
    if (changes.length <= ALONE_UP_TO && independent(changes)) {
      // a few changes that cannot see each other (other users, other keys): each its own
      // statement, sent at once on connections of the pool (one round trip each, as unbatched)
      return Promise.all(
        changes.map(async (change): Promise<BatchOutcome> => {
          try {
            return outcomeOf(await run(client, change));
          } catch (error) {
            return { kind: "failed", error };
          }
        }),
      );
    }
    // runs of changes still to apply, in order; a change that fails on its own splits its run
    const runs = [changes.map((_, i) => i)];
    let again = 0;
    for (let pending = runs.shift(); pending !== undefined; pending = runs.shift()) {
      if (pending.length === 0) continue;
      const batch = pending;
      let culprit: number | undefined;
      try {
        const answers = await client.begin(async (tx) => {
          const settled = await Promise.allSettled(batch.map((i) => run(tx, changes[i] as BalanceChange)));
          const first = settled.findIndex((answer) => answer.status === "rejected");
          if (first >= 0) {
            culprit = first;
            throw (settled[first] as PromiseRejectedResult).reason;
          }
          return settled.map((answer) => (answer as PromiseFulfilledResult<BatchRow[]>).value);
        });
        batch.forEach((i, j) => (outcomes[i] = outcomeOf(answers[j] as BatchRow[])));
      } catch (error) {
        if (culprit !== undefined && !shared(error)) {
          // the changes before it are applied again (they were rolled back with it), then those after it
          outcomes[batch[culprit] as number] = { kind: "failed", error };
          runs.unshift(batch.slice(0, culprit), batch.slice(culprit + 1));
        } else if (rolledBack(error) && again < RERUNS) {
          // a deadlock or serialization failure rolled the whole run back: it runs again, in
          // order, here (left to each change, they would be retried one by one in any order)
          again++;
          await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** again) * (0.5 + Math.random())));
          runs.unshift(batch);
        } else {
          for (const i of batch) outcomes[i] = { kind: "failed", error };
        }
      }
    }
    return outcomes as BatchOutcome[];
  };
}

/**
 * Up to how many changes of a batch run as statements of their own when they are independent: a
 * transaction costs BEGIN and COMMIT round trips that only pay off over more changes.
 */
const ALONE_UP_TO = 3;

/** How often a batch rolled back by a deadlock or serialization failure is run again before its changes fail. */
const RERUNS = 5;

/** No two changes on one user or with one idempotency key: their order cannot matter. */
function independent(changes: readonly BalanceChange[]): boolean {
  const users = new Set(changes.map((change) => change.userId));
  const keys = changes.flatMap((change) => (change.idempotencyKey === null ? [] : [change.idempotencyKey]));
  return users.size === changes.length && new Set(keys).size === keys.length;
}

function outcomeOf(rows: readonly BatchRow[]): BatchOutcome {
  const [row] = rows;
  if (row === undefined) return { kind: "refused", balance: null, heldTokens: 0 };
  if (row.outcome === "refused") return { kind: "refused", balance: Number(row.balance_after), heldTokens: Number(row.amount) };
  return { kind: row.outcome, entry: ledgerEntryFromRow(row) };
}
