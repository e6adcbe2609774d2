/**
 * Nothing is written again to a transaction's or a session's connection once its backend died.
 *
 * postgres.js 3.4.9 and 3.4.10 (porsager/postgres#1208, #1216): when the backend of a `begin()`
 * transaction dies (terminated, idle_in_transaction_session_timeout, a reset), the transaction
 * rejects but the callback runs on, and what it sends next goes to the connection object: with no
 * socket yet, the write throws from a timer where no caller can catch it (the process dies); once
 * the pool has connected it again, the statement runs there — outside any transaction, or inside
 * another caller's — and the driver's own ROLLBACK or COMMIT after the callback does the same. A
 * reserved connection is written to the same way. So briefdb watches each transaction (and each
 * migration session): a statement failing with the connection lost, or the transaction settling,
 * ends it; after that every statement through it is refused (DB_UNREACHABLE: not sent), and the
 * callback never settles, so that postgres.js sends neither ROLLBACK nor COMMIT (the server rolled
 * the transaction back when the backend died). Migration sessions use a connection of their own
 * (never reserve()), whose close ends their watch at once.
 */
import type postgres from "postgres";
import { BriefdbError } from "../../errors.js";

/** Whether a statement's failure means the connection is gone (the dialect's classification). */
export type ConnectionLoss = (error: unknown) => boolean;

export class ConnectionWatch {
  private reason: Error | undefined;

  constructor(private readonly isLoss: ConnectionLoss) {}

  get ended(): boolean {
    return this.reason !== undefined;
  }

  end(reason: unknown): void {
    this.reason ??= reason instanceof Error ? reason : new Error(String(reason));
  }

  /** A statement failed: if the connection is gone, nothing more goes through it. */
  noteFailure(error: unknown): void {
    if (this.isLoss(error)) this.end(error);
  }

  /** `operation`'s outcome, or, when the connection ended meanwhile, a promise that never settles. */
  async unlessEnded<T>(operation: () => Promise<T>): Promise<T> {
    let outcome: { value: T } | { error: unknown };
    try {
      outcome = { value: await operation() };
    } catch (error) {
      outcome = { error };
    }
    if (this.ended) return new Promise<never>(() => {});
    if ("error" in outcome) throw outcome.error;
    return outcome.value;
  }

  /**
   * `sql` with every statement checked first (refused once the watch ended) and its failure noted
   * as it happens — before the caller's own handlers run, which may send the next one.
   */
  guard<S extends object>(sql: S): S {
    const check = <R>(send: () => R): R => {
      if (this.reason !== undefined) return refused(this.reason) as R;
      const sent = send();
      if (sent instanceof Promise) sent.catch((error: unknown) => this.noteFailure(error));
      return sent;
    };
    return new Proxy(sql, {
      apply: (target, self, args) => check(() => Reflect.apply(target as (...a: unknown[]) => unknown, self, args)),
      get: (target, property, receiver) => {
        const value = Reflect.get(target, property, receiver);
        if (property === "unsafe" || property === "file") {
          return (...args: unknown[]) => check(() => (value as (...a: unknown[]) => unknown)(...args));
        }
        if (property === "savepoint") return this.guardedSavepoint(value as postgres.TransactionSql["savepoint"]);
        return value;
      },
    });
  }

  private guardedSavepoint(savepoint: postgres.TransactionSql["savepoint"]) {
    return (nameOrOperation: unknown, maybeOperation?: unknown) => {
      if (this.reason !== undefined) return refused(this.reason);
      const operation = (typeof nameOrOperation === "function" ? nameOrOperation : maybeOperation) as (sql: postgres.TransactionSql) => Promise<unknown>;
      const guarded = (sql: postgres.TransactionSql) => this.unlessEnded(() => operation(this.guard(sql)));
      return typeof nameOrOperation === "function"
        ? (savepoint as (fn: typeof guarded) => Promise<unknown>)(guarded)
        : (savepoint as (name: string, fn: typeof guarded) => Promise<unknown>)(nameOrOperation as string, guarded);
    };
  }
}

/**
 * The pool `client` whose transactions are watched: its `begin` (which drizzle and briefdb's
 * batches use) gives the callback a guarded connection and a watch that ends with the transaction.
 */
export function watchTransactions(client: postgres.Sql, isLoss: ConnectionLoss): postgres.Sql {
  return new Proxy(client, {
    get: (target, property, receiver) => {
      const value = Reflect.get(target, property, receiver);
      if (property !== "begin") return value;
      return (modeOrOperation: unknown, maybeOperation?: unknown) => {
        const watch = new ConnectionWatch(isLoss);
        const operation = (typeof modeOrOperation === "function" ? modeOrOperation : maybeOperation) as (sql: postgres.TransactionSql) => Promise<unknown>;
        const guarded = (sql: postgres.TransactionSql) => watch.unlessEnded(() => operation(watch.guard(sql)));
        const begin = value as (...args: unknown[]) => Promise<unknown>;
        const run = typeof modeOrOperation === "function" ? begin(guarded) : begin(modeOrOperation, guarded);
        // settled (committed, rolled back, or its connection closed): a statement sent through it
        // later would run on whatever that connection does next
        run.then(
          () => watch.end(new Error("the transaction has ended")),
          (error: unknown) => watch.end(error),
        );
        return run;
      };
    },
  });
}

/** A statement refused: a rejected promise that takes the query modifiers callers chain (`.values()`). */
function refused(reason: Error): Promise<never> {
  const promise = Promise.reject(connectionGone(reason));
  for (const modifier of ["values", "raw", "simple", "describe", "execute"]) Object.assign(promise, { [modifier]: () => promise });
  return promise;
}

function connectionGone(reason: Error): BriefdbError {
  return new BriefdbError(
    "DB_UNREACHABLE",
    `the connection of this transaction is gone (${reason.message}); nothing more was sent on it`,
    "run the whole transaction again",
  );
}
