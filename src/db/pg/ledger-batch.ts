/**
 * A batch of deducts and credits on PostgreSQL: a few independent changes as statements of their
 * own, more as ONE statement over arrays, and the fall-backs when that statement fails as a whole
 * (see pgApplyLedgerBatch).
 */
import type postgres from "postgres";
import type { FailureKind } from "../database.js";
import { dateFromEpochMs } from "../inspection.js";
import type { BalanceChange, BatchOutcome } from "../ledger-values.js";
import { ledgerEntryFromRow, ledgerEntryOf, type LedgerRow } from "../ledger-row.js";
import { backOff } from "../../retry.js";
import {
  BATCH_RERUNS,
  eachUserInOrder,
  readRefusal,
  SEPARATE_STATEMENTS_UP_TO,
  SINGLE_CHANGE_ATTEMPTS,
  type PgBatchConnection,
} from "./batch-rules.js";
import { PG_CREDIT_STATEMENT, PG_DEDUCT_STATEMENT, RETURNED } from "./ledger.js";
import { applyArrayBatch } from "./ledger-array-batch.js";

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
    SELECT $1, $2, ${sign}$3::bigint, '${type}', $4, $5, changed.token_balance, $6, clock_timestamp() FROM changed
    RETURNING ${RETURNED}
  )
  SELECT 'applied' AS outcome, * FROM inserted
  UNION ALL SELECT 'replayed', * FROM prior
  UNION ALL SELECT 'refused', NULL, NULL, held_tokens, NULL, NULL, NULL, token_balance, NULL, NULL,
    (extract(epoch from statement_timestamp()) * 1000)::float8 FROM users
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


/**
 * Applies a batch of deducts and credits. Which path a batch takes, and what a failure of the whole
 * does to its changes: docs/architecture.md, "Batching" (the PostgreSQL bullet).
 */
export function pgApplyLedgerBatch({ client, prepare, classify }: PgBatchConnection) {
  const options = { prepare };
  const shared = (error: unknown) => isSharedFailure(classify(error));
  const rolledBack = (error: unknown) => classify(error) === "retryable";
  const lockTimeout = (error: unknown) => classify(error) === "lock_timeout";
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

  /**
   * A change without a key on its own: the plain one-statement deduct or credit (the batch
   * statement's look-up of a key and its answer for a refusal cost the server more, paid on every
   * change; this is what keeps a few callers at the driver's own rate). A refusal reads what the
   * guard saw afterwards: no other change of this user is in flight here (the batcher keeps a
   * user's changes out of batches running beside it), so only another process can have moved it,
   * which core's re-check of a contradicted refusal covers.
   */
  const plainStatement = async (change: BalanceChange): Promise<BatchOutcome> => {
    const [row] = await client.unsafe<Array<{ balance_after: string; created_at_ms: number }>>(
      change.operation === "deduct" ? PG_DEDUCT_STATEMENT : PG_CREDIT_STATEMENT,
      paramsOf(change),
      options,
    );
    if (row !== undefined) return { kind: "applied", entry: ledgerEntryOf(change, Number(row.balance_after), dateFromEpochMs(row.created_at_ms)) };
    return readRefusal(client, change.userId, prepare);
  };

  /** One change as its own statement; rolled back by a deadlock or serialization failure, tried again in place. */
  const runSingle = async (change: BalanceChange): Promise<BatchOutcome> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return change.idempotencyKey === null ? await plainStatement(change) : outcomeOf(await run(client, change));
      } catch (error) {
        if (rolledBack(error) && attempt < SINGLE_CHANGE_ATTEMPTS) {
          await backOff(attempt);
          continue;
        }
        return { kind: "failed", error };
      }
    }
  };

  /** Each user's changes in order, one statement each (a rolled-back one tried again in place); users side by side. */
  const oneByOne = (changes: readonly BalanceChange[], indices: readonly number[], outcomes: Array<BatchOutcome | undefined>) =>
    eachUserInOrder(
      indices,
      (i) => (changes[i] as BalanceChange).userId,
      (i) => runSingle(changes[i] as BalanceChange),
      // the user's row is locked elsewhere (and the batch, its other users' next changes, would wait with it)
      (_, outcome) => outcome.kind === "failed" && lockTimeout(outcome.error),
      outcomes,
    );

  /** The pipelined path over `indices` (see above); a failure of the whole that may be one change's goes to oneByOne. */
  const pipelined = async (changes: readonly BalanceChange[], indices: number[], outcomes: Array<BatchOutcome | undefined>) => {
    // runs of changes still to apply, in order; a change that fails on its own splits its run
    const runs = [indices];
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
        } else if (rolledBack(error) && again < BATCH_RERUNS) {
          // a deadlock or serialization failure rolled the whole run back: it runs again, in
          // order, here (left to each change, they would be retried one by one in any order)
          again++;
          await backOff(again);
          runs.unshift(batch);
        } else if (lockTimeout(error) || rolledBack(error)) {
          // nothing of this run was applied; the lock may be one change's: each meets its own
          await oneByOne(changes, batch, outcomes);
        } else {
          for (const i of batch) outcomes[i] = { kind: "failed", error };
        }
      }
    }
  };

  return async (changes: readonly BalanceChange[]): Promise<BatchOutcome[]> => {
    const outcomes: Array<BatchOutcome | undefined> = changes.map(() => undefined);
    if (changes.length <= SEPARATE_STATEMENTS_UP_TO && independent(changes)) {
      // a few changes that cannot see each other (other users, other keys): each its own
      // statement, sent at once on connections of the pool (one round trip each, as unbatched);
      // a deadlock or serialization failure is tried again in place, as core does unbatched
      return Promise.all(changes.map(runSingle));
    }
    const all = changes.map((_, i) => i);
    if (!keyRepeated(changes)) {
      try {
        return await applyArrayBatch(client, changes, prepare);
      } catch (error) {
        if (lockTimeout(error)) {
          // rolled back whole, nothing applied: the lock may be one change's
          await oneByOne(changes, all, outcomes);
          return outcomes as BatchOutcome[];
        }
        // a lost connection: the statement may have committed; nothing is run again
        if (shared(error) && !rolledBack(error)) return changes.map(() => ({ kind: "failed", error }));
        // else rolled back whole (a key taken meanwhile, a brief deleted meanwhile, a deadlock):
        // the pipelined path finds the change that fails and keeps it from failing the others
      }
    }
    await pipelined(changes, all, outcomes);
    return outcomes as BatchOutcome[];
  };
}

/** Whether one idempotency key appears twice in `changes`. */
function keyRepeated(changes: readonly BalanceChange[]): boolean {
  const keys = new Set<string>();
  for (const change of changes) {
    if (change.idempotencyKey === null) continue;
    if (keys.has(change.idempotencyKey)) return true;
    keys.add(change.idempotencyKey);
  }
  return false;
}

/** No two changes on one user or with one idempotency key: their order cannot matter. */
function independent(changes: readonly BalanceChange[]): boolean {
  const users = new Set(changes.map((change) => change.userId));
  const keys = changes.flatMap((change) => (change.idempotencyKey === null ? [] : [change.idempotencyKey]));
  return users.size === changes.length && new Set(keys).size === keys.length;
}

function outcomeOf(rows: readonly BatchRow[]): BatchOutcome {
  const [row] = rows;
  if (row === undefined) return { kind: "refused", balance: null, heldTokens: 0 };
  if (row.outcome === "refused") {
    return { kind: "refused", balance: Number(row.balance_after), heldTokens: Number(row.amount), decidedAtMs: Number(row.created_at_ms) };
  }
  return { kind: row.outcome, entry: ledgerEntryFromRow(row) };
}

/** A failure that is the whole batch's, not one change's: the connection, the transaction as a whole, a lock. */
function isSharedFailure(kind: FailureKind): boolean {
  // a lock timeout may be a table's that every change would wait for in turn: the batch gives up
  // at once, and each change is tried again on its own (core/ledger/tokens.ts)
  return kind === "connection_lost" || kind === "unreachable" || kind === "retryable" || kind === "auth_failed" || kind === "lock_timeout" || kind === "read_only";
}
