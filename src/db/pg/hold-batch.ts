/**
 * A batch of holds and captures on PostgreSQL, as deducts are batched (./ledger-batch.ts):
 * the holds of a batch as ONE statement over arrays (ARRAY_PLACE), its captures as another
 * (ARRAY_CAPTURE); a batch of one kind is that statement alone, without an explicit transaction,
 * and a batch of both runs the captures, then the holds, in ONE transaction (a capture only ever
 * frees room, so running it first never refuses a hold that one by one would have placed; see
 * docs/architecture.md).
 *
 * Lock order, as everywhere (./holds.ts, ./ledger-batch.ts): hold rows before user rows, each in id
 * order. ARRAY_CAPTURE locks its holds in id order, then every user of the batch (its captures'
 * and, in a batch of both, its holds') in id order, before it changes any; ARRAY_PLACE locks its
 * users in id order (in a batch of both, already held).
 *
 * A failure of the whole: a lost connection fails every change (it may have committed); a
 * deadlock or serialization failure runs the batch again (BATCH_RERUNS times); anything else (a lock
 * waited for too long, a brief deleted meanwhile) runs each change as its own single statement,
 * one user's changes in order, users side by side.
 */
import type postgres from "postgres";
import { dateFromEpochMs } from "../inspection.js";
import type { HoldRow } from "../holds.js";
import type { CaptureOutcome, FailedChange, HoldChange, HoldOutcome, NewCapture, NewHold, PlaceOutcome } from "../ledger-values.js";
import { backOff } from "../../retry.js";
import {
  arrayLiteral,
  BATCH_RERUNS,
  eachUserInOrder,
  readRefusal,
  SEPARATE_STATEMENTS_UP_TO,
  SINGLE_CHANGE_ATTEMPTS,
  type PgBatchConnection,
} from "./batch-rules.js";
import { capturedFromRow, pgHolds, type Num } from "./holds.js";

const ms = (value: string) => `(extract(epoch from ${value}) * 1000)::float8`;

/**
 * The holds of a batch: $1 hold ids, $2 user ids, $3 amounts, $4 reasons, $5 brief ids, $6 TTLs
 * in seconds — parallel arrays in submission order. As ARRAY_BATCH (./ledger-batch.ts): the users
 * locked in id order, then `walk` judges each user's holds in order (placed iff balance − held ≥
 * amount on what the earlier ones left; a hold with room whose brief does not exist fails alone,
 * 'no_brief'). Answers one row per hold of an existing user, with what its guard saw (the held
 * tokens after it, when placed) and the held tokens of holds expired by the statement's clock.
 */
const ARRAY_PLACE = `WITH RECURSIVE ops AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::int[])
      WITH ORDINALITY AS o(id, user_id, amount, reason, brief_id, ttl, ord)
  ), locked AS (
    SELECT id, token_balance, held_tokens FROM users WHERE id = ANY($2::text[]) ORDER BY id FOR NO KEY UPDATE
  ), todo AS (
    SELECT ops.user_id, row_number() OVER (PARTITION BY ops.user_id ORDER BY ops.ord) AS n, ops.ord, ops.amount,
      (ops.brief_id IS NULL OR EXISTS (SELECT 1 FROM briefs b WHERE b.id = ops.brief_id)) AS brief_ok
    FROM ops WHERE ops.user_id IN (SELECT id FROM locked)
  ), lists AS (
    SELECT user_id, count(*) AS steps, array_agg(ord ORDER BY n) AS ords, array_agg(amount ORDER BY n) AS amounts,
      array_agg(brief_ok ORDER BY n) AS briefs_ok
    FROM todo GROUP BY user_id
  ), walk(user_id, n, balance, held, ord, ok, applied) AS (
    SELECT locked.id, 0::bigint, locked.token_balance, locked.held_tokens, 0::bigint, true, false
    FROM locked JOIN lists ON lists.user_id = locked.id
    UNION ALL
    SELECT w.user_id, w.n + 1, w.balance, CASE WHEN s.ok AND s.brief_ok THEN w.held + s.amount ELSE w.held END, s.ord, s.ok, s.ok AND s.brief_ok
    FROM walk w JOIN lists l ON l.user_id = w.user_id AND w.n < l.steps
    CROSS JOIN LATERAL (SELECT l.ords[w.n + 1] AS ord, l.amounts[w.n + 1] AS amount, l.briefs_ok[w.n + 1] AS brief_ok,
      w.balance - w.held >= l.amounts[w.n + 1] AS ok) s
  ), finals AS (
    SELECT DISTINCT ON (user_id) user_id, held FROM walk WHERE applied ORDER BY user_id, n DESC
  ), changed AS (
    UPDATE users SET held_tokens = finals.held, updated_at = statement_timestamp() FROM finals WHERE users.id = finals.user_id
    RETURNING users.id
  ), inserted AS (
    INSERT INTO token_holds (id, user_id, amount, status, reason, brief_id, idempotency_key, expires_at, created_at)
    SELECT ops.id, ops.user_id, ops.amount, 'active', ops.reason, ops.brief_id, NULL,
      statement_timestamp() + ops.ttl * interval '1 second', statement_timestamp()
    FROM walk JOIN ops ON ops.ord = walk.ord WHERE walk.applied
    RETURNING id
  ), expired AS (
    SELECT e.user_id, sum(e.amount) AS total FROM token_holds e
    WHERE e.user_id IN (SELECT user_id FROM lists) AND e.status = 'active' AND e.expires_at <= statement_timestamp()
    GROUP BY e.user_id
  )
  SELECT walk.ord, CASE WHEN walk.applied THEN 'placed' WHEN walk.ok THEN 'no_brief' ELSE 'refused' END AS outcome,
    walk.balance, walk.held, COALESCE(expired.total, 0) AS expired_held,
    ${ms("statement_timestamp()")} AS now_ms, ${ms("statement_timestamp() + ops.ttl * interval '1 second'")} AS expires_at_ms
  FROM walk JOIN ops ON ops.ord = walk.ord LEFT JOIN expired ON expired.user_id = walk.user_id
  WHERE walk.n > 0`;

/**
 * The captures of a batch: $1 hold ids, $2 amounts (null: all of the hold), $3 new ledger ids, $4
 * more users to lock (a batch of both: its holds' users). Only the first capture of a hold in the
 * batch is tried (a later one finds it settled, as one by one). `held` locks the holds in id order;
 * the UPDATE decides on each hold row (active, unexpired, amount within it); the one-time filter
 * of the final SELECT locks every user in id order once the holds are locked, before any user row
 * is changed. The user UPDATE waits for that lock through an uncorrelated sub-select (an
 * InitPlan, run once before it reads a user row), never a join on \`locked\`: a user row another
 * transaction changed meanwhile is re-checked (EvalPlanQual) on its newest version, and a join on
 * the locking CTE there dropped the row (its holds captured, nothing charged, no ledger row).
 * Each capture's balance_after is the user's balance after it: the final balance plus
 * what the user's later captures of the batch charged. Answers one row per capture applied.
 */
const ARRAY_CAPTURE = `WITH ops AS (
    SELECT DISTINCT ON (hold_id) * FROM unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS o(hold_id, amount, ledger_id, ord)
    ORDER BY hold_id, ord
  ), held AS MATERIALIZED (
    SELECT id FROM token_holds WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE
  ), h AS (
    UPDATE token_holds t SET status = 'captured', captured_amount = COALESCE(ops.amount, t.amount), settled_at = statement_timestamp()
    FROM ops
    WHERE t.id = ops.hold_id AND t.id IN (SELECT id FROM held)
      AND t.status = 'active' AND t.expires_at > statement_timestamp() AND t.amount >= COALESCE(ops.amount, t.amount)
    RETURNING t.*, ops.ord, ops.ledger_id
  ), sums AS (
    SELECT user_id, sum(captured_amount) AS charged, sum(amount) AS unheld FROM h GROUP BY user_id
  ), locked AS MATERIALIZED (
    SELECT id FROM users WHERE id IN (SELECT user_id FROM sums UNION ALL SELECT unnest($4::text[])) ORDER BY id FOR NO KEY UPDATE
  ), stamp AS MATERIALIZED (
    SELECT clock_timestamp() AS at FROM (SELECT count(*) FROM locked) l
  ), u AS (
    UPDATE users SET token_balance = token_balance - sums.charged, held_tokens = held_tokens - sums.unheld, updated_at = statement_timestamp()
    FROM sums WHERE users.id = sums.user_id AND (SELECT count(*) FROM locked) >= 0
    RETURNING users.id, users.token_balance
  ), rows AS (
    SELECT h.*, u.token_balance + COALESCE(sum(h.captured_amount) OVER (PARTITION BY h.user_id ORDER BY h.ord DESC
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS balance_after
    FROM h JOIN u ON u.id = h.user_id
  ), t AS (
    INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, hold_id, created_at)
    SELECT ledger_id, user_id, -captured_amount, 'deduct', reason, brief_id, balance_after, NULL, id, (SELECT at FROM stamp) FROM rows
    RETURNING id
  )
  SELECT ord, id, user_id, amount, status, captured_amount, reason, brief_id, idempotency_key,
    ${ms("expires_at")} AS expires_at_ms, ${ms("created_at")} AS created_at_ms, ${ms("settled_at")} AS settled_at_ms,
    balance_after, ${ms("(SELECT at FROM stamp)")} AS ledger_created_at_ms
  FROM rows
  WHERE (SELECT count(*) FROM locked) >= 0`;

type PlaceRow = { ord: Num; outcome: "placed" | "refused" | "no_brief"; balance: Num; held: Num; expired_held: Num; now_ms: Num; expires_at_ms: Num };
type CaptureRow = HoldRow & { ord: Num; balance_after: Num; ledger_created_at_ms: Num };

/**
 * Applies a batch of holds and captures; the one-statement writes (./holds.ts) serve a change on
 * its own and the fall-back one by one.
 */
export function pgApplyHoldBatch({ client, prepare, classify }: PgBatchConnection) {
  const options = { prepare };
  const singles = pgHolds(client, prepare);

  const placeSingle = async (hold: NewHold): Promise<PlaceOutcome> => {
    const placed = await singles.place(hold);
    if (placed !== undefined) return { kind: "placed", placed };
    return readRefusal(client, hold.userId, prepare);
  };

  const captureSingle = async ({ holdId, amount, ledgerId }: NewCapture): Promise<CaptureOutcome> => {
    const captured = await singles.capture(holdId, amount, ledgerId);
    return captured === undefined ? { kind: "not_captured" } : { kind: "captured", captured };
  };

  /** One change as its own statement; rolled back by a deadlock or serialization failure, tried again in place. */
  const runSingle = async (change: HoldChange): Promise<HoldOutcome> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return change.kind === "place" ? await placeSingle(change.hold) : await captureSingle(change.capture);
      } catch (error) {
        if (classify(error) === "retryable" && attempt < SINGLE_CHANGE_ATTEMPTS) {
          await backOff(attempt);
          continue;
        }
        return { kind: "failed", error };
      }
    }
  };

  /** Each user's changes in order, one statement each; users side by side. */
  const oneByOne = async (changes: readonly HoldChange[]): Promise<HoldOutcome[]> => {
    const outcomes: HoldOutcome[] = changes.map(() => ({ kind: "failed", error: new Error("briefdb: a hold change was not run") }));
    await eachUserInOrder(
      changes.map((_, i) => i),
      (i) => userOf(changes[i] as HoldChange),
      (i) => runSingle(changes[i] as HoldChange),
      // the user's row is locked elsewhere: only a hold without a brief can be sure of it (a capture
      // also locks its hold row, a hold with a brief that brief's row: the lock waited for may be
      // one the user's later changes do not need, so they are each tried)
      (i, outcome) => outcome.kind === "failed" && classify(outcome.error) === "lock_timeout" && locksOnlyItsUser(changes[i] as HoldChange),
      outcomes,
    );
    return outcomes;
  };

  /** The batch as one or two array statements (see above); throws when they fail as a whole. */
  const together = async (changes: readonly HoldChange[]): Promise<HoldOutcome[]> => {
    const places: Array<{ i: number; hold: NewHold }> = [];
    const captures: Array<{ i: number; capture: NewCapture }> = [];
    changes.forEach((change, i) => (change.kind === "place" ? places.push({ i, hold: change.hold }) : captures.push({ i, capture: change.capture })));
    const placeUsers = places.map(({ hold }) => hold.userId);
    const capture = (sql: postgres.Sql | postgres.TransactionSql, lockAlso: string[]) =>
      sql.unsafe<CaptureRow[]>(ARRAY_CAPTURE, captureParams(captures.map(({ capture }) => capture), lockAlso), options);
    const place = (sql: postgres.Sql | postgres.TransactionSql) =>
      sql.unsafe<PlaceRow[]>(ARRAY_PLACE, placeParams(places.map(({ hold }) => hold)), options);
    let captureRows: readonly CaptureRow[] = [];
    let placeRows: readonly PlaceRow[] = [];
    if (places.length === 0) captureRows = await capture(client, []);
    else if (captures.length === 0) placeRows = await place(client);
    else {
      [captureRows, placeRows] = await client.begin(async (tx) => {
        // sent together (pipelined); the holds' users are locked by the captures' statement
        const [c, p] = await Promise.allSettled([capture(tx, placeUsers), place(tx)]);
        if (c.status === "rejected") throw c.reason;
        if (p.status === "rejected") throw p.reason;
        return [c.value, p.value] as const;
      });
    }
    const outcomes: HoldOutcome[] = changes.map(() => ({ kind: "not_captured" }));
    for (const { i } of places) outcomes[i] = { kind: "refused", balance: null, heldTokens: 0 };
    for (const row of placeRows) {
      const { i, hold } = places[Number(row.ord) - 1] as { i: number; hold: NewHold };
      outcomes[i] = placeOutcome(hold, row);
    }
    for (const row of captureRows) {
      const { i, capture } = captures[Number(row.ord) - 1] as { i: number; capture: NewCapture };
      outcomes[i] = { kind: "captured", captured: capturedFromRow(row, capture.ledgerId) };
    }
    return outcomes;
  };

  return async (changes: readonly HoldChange[]): Promise<Array<HoldOutcome | FailedChange>> => {
    if (changes.length <= SEPARATE_STATEMENTS_UP_TO && independent(changes)) return Promise.all(changes.map(runSingle));
    for (let again = 0; ; again++) {
      try {
        return await together(changes);
      } catch (error) {
        const kind = classify(error);
        if (kind === "retryable" && again < BATCH_RERUNS) {
          // rolled back whole: the batch runs again, in order (left to each change, they would be retried in any order)
          await backOff(again + 1);
          continue;
        }
        // the statement may have committed (lost connection), or nothing could be sent: every change's failure
        if (kind === "connection_lost" || kind === "unreachable" || kind === "auth_failed" || kind === "read_only") return changes.map(() => ({ kind: "failed", error }));
        // rolled back whole, nothing applied (a lock timeout, a brief deleted meanwhile): the cause may be one change's
        return oneByOne(changes);
      }
    }
  };
}

function placeOutcome(hold: NewHold, row: PlaceRow): PlaceOutcome {
  if (row.outcome === "refused") {
    return { kind: "refused", balance: Number(row.balance), heldTokens: Number(row.held), decidedAtMs: Number(row.now_ms) };
  }
  if (row.outcome === "no_brief") return { kind: "failed", error: noSuchBrief(hold) };
  const createdAt = dateFromEpochMs(row.now_ms);
  const record = {
    id: hold.id,
    userId: hold.userId,
    amount: hold.amount,
    status: "active" as const,
    capturedAmount: null,
    reason: hold.reason,
    briefId: hold.briefId,
    idempotencyKey: null,
    expiresAt: dateFromEpochMs(row.expires_at_ms),
    createdAt,
    settledAt: null,
  };
  // held_tokens still counts holds that expired but are not swept yet; they no longer hold
  return { kind: "placed", placed: { hold: record, balance: Number(row.balance), held: Number(row.held) - Number(row.expired_held) } };
}

/** What the server says when a hold names a brief that does not exist (23503), for a hold the array statement kept from inserting. */
function noSuchBrief(hold: NewHold): Error {
  const error = new Error(
    `insert or update on table "token_holds" violates foreign key constraint "token_holds_brief_id_briefs_id_fk" (brief_id ${hold.briefId ?? "null"})`,
  );
  return Object.assign(error, { code: "23503" });
}

function placeParams(holds: readonly NewHold[]): string[] {
  return [
    arrayLiteral(holds.map((hold) => hold.id)),
    arrayLiteral(holds.map((hold) => hold.userId)),
    arrayLiteral(holds.map((hold) => hold.amount)),
    arrayLiteral(holds.map((hold) => hold.reason)),
    arrayLiteral(holds.map((hold) => hold.briefId)),
    arrayLiteral(holds.map((hold) => hold.ttlSeconds)),
  ];
}

function captureParams(captures: readonly NewCapture[], lockAlso: readonly string[]): string[] {
  return [
    arrayLiteral(captures.map((capture) => capture.holdId)),
    arrayLiteral(captures.map((capture) => capture.amount)),
    arrayLiteral(captures.map((capture) => capture.ledgerId)),
    arrayLiteral(lockAlso),
  ];
}

/** Whether the only row the change's statement locks is its user's: a hold without a brief. */
function locksOnlyItsUser(change: HoldChange): boolean {
  return change.kind === "place" && change.hold.briefId === null;
}

function userOf(change: HoldChange): string {
  return change.kind === "place" ? change.hold.userId : change.capture.userId;
}

/** No two changes on one user: their order cannot matter (a capture's key, its hold, is its user's too). */
function independent(changes: readonly HoldChange[]): boolean {
  return new Set(changes.map(userOf)).size === changes.length;
}
