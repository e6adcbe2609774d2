/**
 * The token hot path on SQLite: the conditional UPDATE … RETURNING and the ledger INSERT as
 * drizzle prepared statements, run together in one synchronous IMMEDIATE transaction (the write
 * lock is taken first, so concurrent processes queue on the busy timeout instead of deadlocking).
 * With an abort signal, the wait for the write lock happens between attempts in JavaScript rather
 * than inside SQLite's busy handler, so that the signal is heard while waiting. A batch of changes
 * (applyBatch) runs in one IMMEDIATE transaction, each change in a savepoint of its own.
 */
import { and, eq, gte, lte, sql } from "drizzle-orm";
import type { ApplyOptions, BalanceChange, BatchOutcome, LedgerEntry, LedgerStatements } from "../database.js";
import { ledgerEntryOf } from "../ledger-row.js";
import { immediateUnlessAborted, type SqliteConnection } from "./connection.js";
import { ledgerStamper } from "./ledger-stamp.js";
import { tokenTransactions, users } from "./schema.js";

const MAX_BALANCE = Number.MAX_SAFE_INTEGER;

/** The statements, and the same without the queue, for a transaction that already holds the connection. */
export function sqliteLedger(connection: SqliteConnection): LedgerStatements & {
  readonly inTransaction: LedgerStatements;
  applyBatch(changes: readonly BalanceChange[]): Promise<BatchOutcome[]>;
} {
  const amount = sql.placeholder("amount");
  const userId = sql.placeholder("userId");
  const now = sql.placeholder("now");
  const deduct = connection.orm
    .update(users)
    .set({ tokenBalance: sql`${users.tokenBalance} - ${amount}`, updatedAt: sql`${now}` })
    // held tokens are not the deduct's to take (see ../holds.ts)
    .where(and(eq(users.id, userId), gte(sql`${users.tokenBalance} - ${users.heldTokens}`, amount)))
    .returning({ balance: users.tokenBalance })
    .prepare();
  const credit = connection.orm
    .update(users)
    .set({ tokenBalance: sql`${users.tokenBalance} + ${amount}`, updatedAt: sql`${now}` })
    .where(and(eq(users.id, userId), lte(users.tokenBalance, sql`${MAX_BALANCE} - ${amount}`)))
    .returning({ balance: users.tokenBalance })
    .prepare();
  // placeholders named after LedgerEntry's fields, so an entry binds as it is
  const insert = connection.orm
    .insert(tokenTransactions)
    .values({
      id: sql.placeholder("id"),
      userId,
      amount: sql.placeholder("amount"),
      type: sql.placeholder("type"),
      reason: sql.placeholder("reason"),
      briefId: sql.placeholder("briefId"),
      balanceAfter: sql.placeholder("balanceAfter"),
      idempotencyKey: sql.placeholder("idempotencyKey"),
      createdAt: sql.placeholder("createdAt"),
    })
    .prepare();
  const byKey = connection.orm
    .select()
    .from(tokenTransactions)
    .where(eq(tokenTransactions.idempotencyKey, sql.placeholder("key")))
    .prepare();

  const stampAfterNewest = ledgerStamper(connection.client);

  const applyChange = (change: BalanceChange): LedgerEntry | undefined => {
    const now = Date.now();
    const update = change.operation === "deduct" ? deduct : credit;
    const updated = update.get({ userId: change.userId, amount: change.amount, now });
    if (updated === undefined) return undefined;
    const stamp = stampAfterNewest(change.userId, change.id, now);
    const entry = ledgerEntryOf({ ...change, id: stamp.id }, updated.balance, new Date(stamp.createdAt));
    insert.run(entry as unknown as Record<string, unknown>);
    return entry;
  };
  const applyInTransaction = connection.client.transaction(applyChange);

  const balanceOf = connection.orm
    .select({ balance: users.tokenBalance, heldTokens: users.heldTokens })
    .from(users)
    .where(eq(users.id, userId))
    .prepare();

  // one change of a batch: replayed, applied, or refused with the balance its guard saw
  const judge = (change: BalanceChange): BatchOutcome => {
    if (change.idempotencyKey !== null) {
      const prior = byKey.get({ key: change.idempotencyKey });
      if (prior !== undefined) return { kind: "replayed", entry: prior };
    }
    const decidedAtMs = Date.now();
    const entry = applyChange(change);
    if (entry !== undefined) return { kind: "applied", entry };
    // read in the same write transaction: the balance the guard saw
    const row = balanceOf.get({ userId: change.userId });
    return row === undefined ? { kind: "refused", balance: null, heldTokens: 0 } : { kind: "refused", ...row, decidedAtMs };
  };
  // in its own savepoint (better-sqlite3 nests a transaction function as one), so that its failure
  // undoes only its own writes
  const applyInBatch = connection.client.transaction(judge);
  // the usual batch: no change fails (a missing brief, a CHECK), so none needs a savepoint of its
  // own; the first that fails rolls the lot back, and the batch runs again with savepoints
  const applyBatchOptimistically = connection.client.transaction((changes: readonly BalanceChange[]): BatchOutcome[] =>
    changes.map((change) => {
      try {
        return judge(change);
      } catch (error) {
        throw new ChangeFailed(error);
      }
    }),
  );
  const applyBatchInTransaction = connection.client.transaction((changes: readonly BalanceChange[]): BatchOutcome[] =>
    changes.map((change) => {
      try {
        return applyInBatch(change);
      } catch (error) {
        return { kind: "failed", error };
      }
    }),
  );

  const findByKey = async (key: string): Promise<LedgerEntry | undefined> => byKey.get({ key });
  /** One BEGIN IMMEDIATE … COMMIT (one fsync) for the lot; each change decided on its own inside. */
  const applyBatch = (changes: readonly BalanceChange[]): Promise<BatchOutcome[]> =>
    connection.exclusive(() => {
      const [alone] = changes;
      if (changes.length !== 1 || alone === undefined) {
        try {
          return applyBatchOptimistically.immediate(changes);
        } catch (error) {
          // rolled back whole: each change again in a savepoint of its own (a failure of the
          // transaction itself, a busy BEGIN say, is the batch's)
          if (!(error instanceof ChangeFailed)) throw error;
          return applyBatchInTransaction.immediate(changes);
        }
      }
      // a batch of one (a lone caller): its transaction is its own, no savepoint needed
      try {
        return [applyInBatch.immediate(alone)];
      } catch (error) {
        return [{ kind: "failed", error }];
      }
    });
  return {
    apply: (change: BalanceChange, { signal }: ApplyOptions = {}): Promise<LedgerEntry | undefined> =>
      immediateUnlessAborted(connection, () => applyInTransaction.immediate(change), signal),
    findByKey,
    applyBatch,
    // inside briefdb's open transaction better-sqlite3 runs this one as a savepoint
    inTransaction: { apply: async (change: BalanceChange) => applyInTransaction(change), findByKey },
  };
}

/** A change of an optimistic batch failed on its own: the batch is rolled back and run with savepoints. */
class ChangeFailed extends Error {
  constructor(readonly failure: unknown) {
    super("briefdb: a change of the batch failed on its own");
  }
}
