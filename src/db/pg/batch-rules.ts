/**
 * What PostgreSQL's two batchers (deducts and credits, ./ledger-batch.ts; holds and captures,
 * ./hold-batch.ts) share: the one argument they are built from, when a batch's changes go as
 * statements of their own and how often a rolled-back one runs again, each user's changes in order
 * when the batch must fall back to them, the read of what a refusing guard saw, and array
 * parameters.
 */
import type postgres from "postgres";
import type { FailureKind } from "../database.js";
import type { Refusal } from "../ledger-values.js";

/** What a batcher is built from: the pool, whether statements are prepared, and how the dialect reads a failure. */
export interface PgBatchConnection {
  readonly client: postgres.Sql;
  readonly prepare: boolean;
  readonly classify: (error: unknown) => FailureKind;
}

/**
 * Up to how many changes of a batch run as statements of their own when they are independent: a
 * transaction costs BEGIN and COMMIT round trips that only pay off over more changes.
 */
export const SEPARATE_STATEMENTS_UP_TO = 3;

/** Tries of one change run as its own statement, rolled back by a deadlock or serialization failure: as core's unbatched. */
export const SINGLE_CHANGE_ATTEMPTS = 10;

/** How often a batch rolled back by a deadlock or serialization failure is run again before its changes fail. */
export const BATCH_RERUNS = 5;

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

// what a refused change's guard saw, read right after it (decided_at_ms: no earlier than the guard)
const SEEN = "SELECT token_balance, held_tokens, (extract(epoch from statement_timestamp()) * 1000)::float8 AS decided_at_ms FROM users WHERE id = $1";
/**
 * A refusal as its guard saw it, read right after the statement that refused (a hold's too,
 * ./hold-batch.ts): the user's balance and held tokens, and when (no earlier than the guard);
 * balance null when there is no such user.
 */
export async function readRefusal(client: postgres.Sql, userId: string, prepare: boolean): Promise<Refusal> {
  const [seen] = await client.unsafe<Array<{ token_balance: string; held_tokens: string; decided_at_ms: number }>>(SEEN, [userId], { prepare });
  return seen === undefined
    ? { kind: "refused", balance: null, heldTokens: 0 }
    : { kind: "refused", balance: Number(seen.token_balance), heldTokens: Number(seen.held_tokens), decidedAtMs: Number(seen.decided_at_ms) };
}

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
