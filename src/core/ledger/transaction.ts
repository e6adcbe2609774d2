/**
 * withTransaction, the app's transaction wrapper: commit, or roll back and return the failure as a
 * value with a code of the contract (docs/architecture.md, "Exit codes") instead of throwing.
 */
import type { BriefDatabase, Transaction, TransactionOptions } from "../../db/database.js";
import type { BriefdbError } from "../../errors.js";
import { toBriefdbError } from "../failures.js";

export type Result<T> = { success: true; data: T } | { success: false; error: BriefdbError };

/**
 * `tx` runs raw SQL (`tx.all`, `tx.run`, `tx.exec`), the app's Drizzle queries (`tx.drizzle`,
 * typed when `db` is) and token operations given `{ transaction: tx }`, all in one transaction.
 */
export function withTransaction<T, TxOrm = unknown>(
  db: BriefDatabase<unknown, TxOrm>,
  operation: (tx: Transaction<TxOrm>) => Promise<T>,
  options?: TransactionOptions,
): Promise<Result<T>> {
  return asResult(db, () => db.transaction(operation, options));
}

/** Runs `work` and returns its outcome as a Result: the library's never-throwing face. */
export async function asResult<T>(db: BriefDatabase, work: () => Promise<T>): Promise<Result<T>> {
  try {
    return { success: true, data: await work() };
  } catch (error) {
    return { success: false, error: toBriefdbError(error, db) };
  }
}
