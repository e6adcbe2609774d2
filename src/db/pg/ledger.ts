/**
 * The token hot path on PostgreSQL: the conditional UPDATE and the ledger INSERT as ONE statement
 * (a data-modifying CTE), so a deduct is one round trip and atomic without an explicit
 * transaction. postgres.js prepares it once per connection. If the INSERT fails (a taken
 * idempotency key), the UPDATE rolls back with it. An abort while the statement is in flight sends
 * the protocol's cancel request and waits for the statement's own answer: cancelled (57014,
 * nothing changed) or committed first (the entry).
 *
 * Every ledger row is stamped (created_at) with clock_timestamp() once its statement holds the
 * user's row lock — not now(), the start of a statement or transaction that may then wait for that
 * lock while another change of the user commits. So a user's history in (created_at, id) order is
 * the order the rows were applied, and each balance_after is the running balance in that order.
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
const CREDIT = applyStatement(
  "token_balance + $3::bigint",
  `token_balance <= ${Number.MAX_SAFE_INTEGER} - $3::bigint`,
  "",
  "credit",
);
// what a refused change's guard saw, read right after it (decided_at_ms: no earlier than the guard)
const SEEN = "SELECT token_balance, held_tokens, (extract(epoch from statement_timestamp()) * 1000)::float8 AS decided_at_ms FROM users WHERE id = $1";
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
 * A whole batch as ONE statement over arrays (issue 12): $1 ledger ids, $2 user ids, $3 amounts,
 * $4 is_credit, $5 reasons, $6 brief ids, $7 idempotency keys — parallel arrays in submission
 * order, sent as array literals (arrayLiteral). One round trip, one commit, and per change only
 * the row work: the per-statement cost of a change is gone.
 *
 * - `prior`: ledger rows that already carry a key of the batch: those changes are 'replayed'.
 * - `locked`: the batch's users, locked in id order (concurrent batches never deadlock on them);
 *   under READ COMMITTED a locking read that waited returns the newest committed version, which
 *   is what the guards judge.
 * - `walk`: each user's changes in submission order, a pure computation (RECURSIVE, one step per
 *   change of the user): a change is applied iff its guard holds on the balance its earlier
 *   changes left (deduct: balance − held ≥ amount; credit: balance ≤ 2^53−1 − amount), and a
 *   guard that holds on a change whose brief does not exist fails it alone ('no_brief'); a
 *   change not applied leaves the balance alone.
 * - the users' final balances are written, the applied changes' ledger rows inserted.
 * Answers one row per change (its ordinality), none for a change on a user that does not exist.
 * What it cannot judge (a key repeated inside the batch) is never sent to it; what fails it as a
 * whole (a key another process took meanwhile, a brief deleted meanwhile) is run again on the
 * pipelined path, which isolates a failing change.
 */
const ARRAY_BATCH = `WITH RECURSIVE ops AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bool[], $5::text[], $6::text[], $7::text[])
      WITH ORDINALITY AS o(id, user_id, amount, is_credit, reason, brief_id, key, ord)
  ), prior AS (
    SELECT ${RETURNED} FROM token_transactions WHERE idempotency_key = ANY($7::text[])
  ), locked AS (
    SELECT id, token_balance, held_tokens FROM users WHERE id = ANY($2::text[]) ORDER BY id FOR NO KEY UPDATE
  ), stamp AS MATERIALIZED (
    SELECT clock_timestamp() AS at FROM (SELECT count(*) FROM locked) l
  ), todo AS (
    SELECT ops.user_id, row_number() OVER (PARTITION BY ops.user_id ORDER BY ops.ord) AS n, ops.ord, ops.amount, ops.is_credit,
      (ops.brief_id IS NULL OR EXISTS (SELECT 1 FROM briefs b WHERE b.id = ops.brief_id)) AS brief_ok
    FROM ops
    WHERE ops.user_id IN (SELECT id FROM locked)
      AND (ops.key IS NULL OR NOT EXISTS (SELECT 1 FROM prior WHERE prior.idempotency_key = ops.key))
  ), lists AS (
    SELECT user_id, count(*) AS steps, array_agg(ord ORDER BY n) AS ords, array_agg(amount ORDER BY n) AS amounts,
      array_agg(is_credit ORDER BY n) AS credits, array_agg(brief_ok ORDER BY n) AS briefs_ok
    FROM todo GROUP BY user_id
  ), walk(user_id, n, balance, held, ord, ok, applied) AS (
    SELECT locked.id, 0::bigint, locked.token_balance, locked.held_tokens, 0::bigint, true, false
    FROM locked JOIN lists ON lists.user_id = locked.id
    UNION ALL
    SELECT w.user_id, w.n + 1,
      CASE WHEN s.ok AND s.brief_ok THEN s.next ELSE w.balance END, w.held, s.ord, s.ok, s.ok AND s.brief_ok
    FROM walk w JOIN lists l ON l.user_id = w.user_id AND w.n < l.steps
    CROSS JOIN LATERAL (SELECT l.ords[w.n + 1] AS ord, l.briefs_ok[w.n + 1] AS brief_ok,
      CASE WHEN l.credits[w.n + 1] THEN w.balance <= ${Number.MAX_SAFE_INTEGER} - l.amounts[w.n + 1]
        ELSE w.balance - w.held >= l.amounts[w.n + 1] END AS ok,
      CASE WHEN l.credits[w.n + 1] THEN w.balance + l.amounts[w.n + 1] ELSE w.balance - l.amounts[w.n + 1] END AS next) s
  ), finals AS (
    SELECT DISTINCT ON (user_id) user_id, balance FROM walk WHERE applied ORDER BY user_id, n DESC
  ), changed AS (
    UPDATE users SET token_balance = finals.balance, updated_at = now() FROM finals WHERE users.id = finals.user_id
    RETURNING users.id
  ), inserted AS (
    INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, created_at)
    SELECT ops.id, ops.user_id, CASE WHEN ops.is_credit THEN ops.amount ELSE -ops.amount END,
      CASE WHEN ops.is_credit THEN 'credit' ELSE 'deduct' END, ops.reason, ops.brief_id, walk.balance, ops.key, (SELECT at FROM stamp)
    FROM walk JOIN ops ON ops.ord = walk.ord WHERE walk.applied
    RETURNING id
  )
  SELECT walk.ord, CASE WHEN walk.applied THEN 'applied' WHEN walk.ok THEN 'no_brief' ELSE 'refused' END AS outcome,
    walk.balance AS balance_after, walk.held, (extract(epoch from (SELECT at FROM stamp)) * 1000)::float8 AS created_at_ms,
    NULL AS id, NULL AS user_id, NULL::bigint AS amount, NULL AS type, NULL AS reason, NULL AS brief_id, NULL AS idempotency_key, NULL AS hold_id
  FROM walk WHERE walk.n > 0
  UNION ALL
  SELECT ops.ord, 'replayed', prior.balance_after, NULL, prior.created_at_ms,
    prior.id, prior.user_id, prior.amount, prior.type, prior.reason, prior.brief_id, prior.idempotency_key, prior.hold_id
  FROM ops JOIN prior ON prior.idempotency_key = ops.key`;

type ArrayRow = LedgerRow & { readonly ord: string | number; readonly outcome: "applied" | "replayed" | "refused" | "no_brief"; readonly held: string | number | null };

/** A PostgreSQL array literal of `values` (each element quoted, NULL for null), for a `$n::type[]` parameter. */
export function arrayLiteral(values: ReadonlyArray<string | number | boolean | null>): string {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) out += ",";
    if (value === null || value === undefined) out += "NULL";
    else if (typeof value === "number") out += String(value);
    else if (typeof value === "boolean") out += value ? "t" : "f";
    else out += `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  }
  return `${out}}`;
}


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
 * Applies a batch on PostgreSQL. One change alone is its one statement (one round trip, its own
 * transaction), and so are a few independent ones (ALONE_UP_TO), sent at once. More are ONE
 * statement over arrays (ARRAY_BATCH): one round trip and one commit for the lot, each change
 * judged on its own in submission order inside it.
 *
 * What that statement cannot judge, or a failure of it as a whole, goes to the pipelined path:
 * one transaction, one statement per change (the batch statement above) sent without waiting
 * for each other's answers, in submission order. A key repeated inside the batch goes there at
 * once (whether the second use replays depends on the first's fate, which may be another
 * user's); a key another process took meanwhile or a brief deleted meanwhile (the array
 * statement rolled back whole) is run there again. There a change failing on its own rolls the
 * transaction back, and the changes before it run again as a transaction, then those after it:
 * no change ever fails its neighbours. A deadlock or serialization failure of the whole runs it
 * again in order (RERUNS times).
 *
 * A lock waited for too long (or a deadlock that keeps coming back) may be one change's: then
 * each user's changes run one after another, each its own statement, users side by side
 * (`oneByOne`), so that each change meets only its own lock and one user's changes keep their
 * order. Core never retries a batched change on its own. A lost connection is every change's
 * failure: the statement may have committed, so nothing is run again.
 */
export function pgApplyBatch(client: postgres.Sql, prepare: boolean, shared: SharedFailure, rolledBack: SharedFailure = () => false, lockTimeout: SharedFailure = () => false) {
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

  /**
   * A change without a key on its own: the plain one-statement deduct or credit (the batch
   * statement's look-up of a key and its answer for a refusal cost the server more, paid on every
   * change; this is what keeps a few callers at the driver's own rate). A refusal reads what the
   * guard saw afterwards: no other change of this user is in flight here (the batcher keeps a
   * user's changes out of batches running beside it), so only another process can have moved it,
   * which core's re-check of a contradicted refusal covers.
   */
  const alone = async (change: BalanceChange): Promise<BatchOutcome> => {
    const [row] = await client.unsafe<Array<{ balance_after: string; created_at_ms: number }>>(
      change.operation === "deduct" ? PG_DEDUCT_STATEMENT : CREDIT,
      paramsOf(change),
      options,
    );
    if (row !== undefined) return { kind: "applied", entry: ledgerEntryOf(change, Number(row.balance_after), dateFromEpochMs(row.created_at_ms)) };
    return refusalSeen(client, change.userId, prepare);
  };

  /** One change as its own statement; rolled back by a deadlock or serialization failure, tried again in place. */
  const runAlone = async (change: BalanceChange): Promise<BatchOutcome> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return change.idempotencyKey === null ? await alone(change) : outcomeOf(await run(client, change));
      } catch (error) {
        if (rolledBack(error) && attempt < ALONE_ATTEMPTS) {
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
      (i) => runAlone(changes[i] as BalanceChange),
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
        } else if (rolledBack(error) && again < RERUNS) {
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
    if (changes.length <= ALONE_UP_TO && independent(changes)) {
      // a few changes that cannot see each other (other users, other keys): each its own
      // statement, sent at once on connections of the pool (one round trip each, as unbatched);
      // a deadlock or serialization failure is tried again in place, as core does unbatched
      return Promise.all(changes.map(runAlone));
    }
    const all = changes.map((_, i) => i);
    if (!keyRepeated(changes)) {
      try {
        const rows = await client.unsafe<ArrayRow[]>(ARRAY_BATCH, arrayParams(changes), options);
        return arrayOutcomes(changes, rows);
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

/** The seven parallel arrays of ARRAY_BATCH, as array literals. */
function arrayParams(changes: readonly BalanceChange[]): string[] {
  return [
    arrayLiteral(changes.map((change) => change.id)),
    arrayLiteral(changes.map((change) => change.userId)),
    arrayLiteral(changes.map((change) => change.amount)),
    arrayLiteral(changes.map((change) => change.operation === "credit")),
    arrayLiteral(changes.map((change) => change.reason)),
    arrayLiteral(changes.map((change) => change.briefId)),
    arrayLiteral(changes.map((change) => change.idempotencyKey)),
  ];
}

/** One outcome per change from ARRAY_BATCH's rows (no row: no such user). */
function arrayOutcomes(changes: readonly BalanceChange[], rows: readonly ArrayRow[]): BatchOutcome[] {
  const outcomes: BatchOutcome[] = changes.map(() => ({ kind: "refused", balance: null, heldTokens: 0 }));
  for (const row of rows) {
    const i = Number(row.ord) - 1;
    const change = changes[i] as BalanceChange;
    if (row.outcome === "applied") {
      outcomes[i] = { kind: "applied", entry: ledgerEntryOf(change, Number(row.balance_after), dateFromEpochMs(row.created_at_ms)) };
    } else if (row.outcome === "replayed") {
      outcomes[i] = { kind: "replayed", entry: ledgerEntryFromRow(row) };
    } else if (row.outcome === "refused") {
      outcomes[i] = { kind: "refused", balance: Number(row.balance_after), heldTokens: Number(row.held), decidedAtMs: Number(row.created_at_ms) };
    } else {
      outcomes[i] = { kind: "failed", error: noSuchBrief(change) };
    }
  }
  return outcomes;
}

/**
 * What the server says when a ledger row names a brief that does not exist (23503), for a change
 * the array statement kept from inserting one: read by core exactly as the server's own.
 */
function noSuchBrief(change: BalanceChange): Error {
  const error = new Error(
    `insert or update on table "token_transactions" violates foreign key constraint "token_transactions_brief_id_briefs_id_fk" (brief_id ${change.briefId ?? "null"})`,
  );
  return Object.assign(error, { code: "23503" });
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

/**
 * Runs the changes at `indices` one at a time per user, in order, users side by side, writing each
 * outcome into `outcomes`. When `givesUpUser` says a change's failure would hold up the user's later
 * changes too (a lock timeout on the user's row: each would wait the whole timeout in turn), those
 * were not applied and get the same outcome, in order.
 */
export async function eachUserInOrder<O>(
  indices: readonly number[],
  userOf: (i: number) => string,
  run: (i: number) => Promise<O>,
  givesUpUser: (i: number, outcome: O) => boolean,
  outcomes: Array<O | undefined>,
): Promise<void> {
  const byUser = new Map<string, number[]>();
  for (const i of indices) {
    const list = byUser.get(userOf(i));
    if (list === undefined) byUser.set(userOf(i), [i]);
    else list.push(i);
  }
  await Promise.all(
    [...byUser.values()].map(async (list) => {
      for (const [n, i] of list.entries()) {
        const outcome = (outcomes[i] = await run(i));
        if (givesUpUser(i, outcome)) {
          for (const later of list.slice(n + 1)) outcomes[later] = outcome;
          return;
        }
      }
    }),
  );
}

/**
 * A refusal as its guard saw it, read right after the statement that refused (a hold's too,
 * ./hold-batch.ts): the user's balance and held tokens, and when (no earlier than the guard);
 * balance null when there is no such user.
 */
export async function refusalSeen(client: postgres.Sql, userId: string, prepare: boolean) {
  const [seen] = await client.unsafe<Array<{ token_balance: string; held_tokens: string; decided_at_ms: number }>>(SEEN, [userId], { prepare });
  return seen === undefined
    ? { kind: "refused" as const, balance: null, heldTokens: 0 }
    : { kind: "refused" as const, balance: Number(seen.token_balance), heldTokens: Number(seen.held_tokens), decidedAtMs: Number(seen.decided_at_ms) };
}

/** Waits before a batch or a change rolled back by a deadlock or serialization failure runs again (./hold-batch.ts too). */
export function backOff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random())));
}

/**
 * Up to how many changes of a batch run as statements of their own when they are independent: a
 * transaction costs BEGIN and COMMIT round trips that only pay off over more changes.
 */
export const ALONE_UP_TO = 3;

/** Tries of one change run as its own statement, rolled back by a deadlock or serialization failure: as core's unbatched. */
export const ALONE_ATTEMPTS = 10;

/** How often a batch rolled back by a deadlock or serialization failure is run again before its changes fail. */
export const RERUNS = 5;

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
