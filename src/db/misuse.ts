/**
 * Refusals of a call the database object cannot take whatever the database says: a call after
 * close(), and a transaction handle used after its transaction ended. The same code on both
 * dialects; nothing is sent, so nothing changed.
 */
import type { SQL } from "drizzle-orm";
import { BriefdbError } from "../errors.js";
import type { LedgerStatements, Row, Transaction } from "./database.js";
import type { TransactionHolds } from "./holds.js";

export function databaseClosed(display: string): BriefdbError {
  return new BriefdbError(
    "CLOSED",
    `${display} was closed (db.close()) before this call; nothing changed`,
    "open the database again with openDatabase, or close it only once the app is done with it",
  );
}

/** The transaction was still open when close() ended it: its operation had not finished, so it never committed. */
export function closedUnderTransaction(display: string): BriefdbError {
  return new BriefdbError(
    "CLOSED",
    `${display} was closed (db.close()) while this transaction's operation was still running: the transaction was rolled back; nothing changed`,
    "let every withTransaction finish before close(), or end an operation that may hang (a timeout of its own)",
  );
}

/** A statement still running when close() stopped waiting: cancelled on the server, so rolled back. */
export function stoppedByClose(display: string, cause: unknown): BriefdbError {
  return new BriefdbError(
    "CLOSED",
    `${display} was closed (db.close()) while this statement was still running: it was cancelled on the server; nothing changed`,
    "let the calls finish before close(), or give close() longer ({ timeoutMs })",
    { cause },
  );
}

export function transactionEnded(): BriefdbError {
  return new BriefdbError(
    "USAGE",
    "this transaction has ended (its withTransaction returned): its tx cannot be used any more; nothing changed",
    "use tx (or { transaction: tx }) only inside the operation given to withTransaction",
  );
}

/**
 * `tx` for the length of its transaction: once `end()` is called, each of its members refuses
 * (USAGE, transactionEnded) instead of running outside any transaction, or inside another one
 * that took its connection since.
 */
export function endingWithTransaction<TxOrm>(tx: Transaction<TxOrm>): { readonly tx: Transaction<TxOrm>; end(): void } {
  let open = true;
  const check = async (): Promise<void> => {
    if (!open) throw transactionEnded();
  };
  const drizzle = new Proxy(tx.drizzle as object, {
    get: (target, key) => {
      if (!open) throw transactionEnded();
      return Reflect.get(target, key);
    },
  }) as TxOrm;
  // the ledger and holds are read when first used (SQLite prepares them then: the tables must exist)
  const ledger: LedgerStatements = {
    apply: async (change, options) => (await check(), tx.ledger.apply(change, options)),
    findByKey: async (key) => (await check(), tx.ledger.findByKey(key)),
  };
  const holds: TransactionHolds = { sweepExpired: async (userId) => (await check(), tx.holds.sweepExpired(userId)) };
  return {
    tx: {
      all: async <T extends Row = Row>(query: SQL) => (await check(), tx.all<T>(query)),
      run: async (query: SQL) => (await check(), tx.run(query)),
      exec: async (script: string) => (await check(), tx.exec(script)),
      drizzle,
      ledger,
      holds,
    },
    end: () => {
      open = false;
    },
  };
}
