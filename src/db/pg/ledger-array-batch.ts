/**
 * A whole batch of deducts and credits as ONE statement over arrays, and the outcomes read from
 * its rows (./ledger-batch.ts decides when a batch goes this way).
 */
import type postgres from "postgres";
import { dateFromEpochMs } from "../inspection.js";
import type { BalanceChange, BatchOutcome } from "../ledger-values.js";
import { ledgerEntryFromRow, ledgerEntryOf, type LedgerRow } from "../ledger-row.js";
import { arrayLiteral } from "./batch-rules.js";
import { RETURNED } from "./ledger.js";

/**
 * A whole batch as ONE statement over arrays: $1 ledger ids, $2 user ids, $3 amounts,
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

/** Runs the batch as ARRAY_BATCH: one outcome per change; rejects when the statement fails as a whole. */
export async function applyArrayBatch(client: postgres.Sql, changes: readonly BalanceChange[], prepare: boolean): Promise<BatchOutcome[]> {
  const rows = await client.unsafe<ArrayRow[]>(ARRAY_BATCH, arrayParams(changes), { prepare });
  return arrayOutcomes(changes, rows);
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
