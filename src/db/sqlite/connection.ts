/**
 * One better-sqlite3 connection and the rule that keeps it sound: its transactions take turns,
 * never interleaved, and a call made from inside the open one runs in it. The ledger, the holds
 * and bulk inserts take this, not the database object around it.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type Database from "better-sqlite3";
import type { BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { ConnectionLock } from "../connection-lock.js";
import { errorCode } from "../driver-errors.js";
import type * as schema from "./schema.js";

export type SqliteOrm = BetterSQLite3Database<typeof schema>;

export class SqliteConnection {
  private readonly lock = new ConnectionLock();
  /**
   * Which async context holds the connection's transaction: a call made from inside it (the
   * operation's own `db.all`, a token change, a nested withTransaction) runs in that transaction
   * at once. Queued behind it, it would wait for the very operation that waits for it, forever.
   */
  private readonly holder = new AsyncLocalStorage<object>();
  private heldBy: object | undefined;
  private savepoints = 0;

  constructor(
    readonly client: Database.Database,
    readonly orm: SqliteOrm,
    /** How long a statement waits for another connection's write lock (the busy timeout). */
    readonly lockTimeoutMs: number,
  ) {}

  /** Runs `operation` in one IMMEDIATE transaction, queued behind the open one; from inside it, in a savepoint. */
  transaction<T>(operation: () => Promise<T>): Promise<T> {
    if (this.insideHeldTransaction()) return this.savepoint(operation);
    return this.lock.run(async () => {
      this.client.exec("BEGIN IMMEDIATE");
      const token = {};
      this.heldBy = token;
      try {
        const result = await this.holder.run(token, operation);
        this.client.exec("COMMIT");
        return result;
      } catch (error) {
        if (this.client.inTransaction) this.client.exec("ROLLBACK");
        throw error;
      } finally {
        this.heldBy = undefined;
      }
    });
  }

  /** A transaction inside the open one: undone alone when its operation fails. */
  private async savepoint<T>(operation: () => Promise<T>): Promise<T> {
    const name = `briefdb_nested_${++this.savepoints}`;
    this.client.exec(`SAVEPOINT ${name}`);
    try {
      const result = await operation();
      this.client.exec(`RELEASE ${name}`);
      return result;
    } catch (error) {
      if (this.client.inTransaction) this.client.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
      throw error;
    }
  }

  /** Whether the caller runs inside the operation of the transaction open now (not a later one). */
  insideHeldTransaction(): boolean {
    const token = this.holder.getStore();
    return token !== undefined && token === this.heldBy;
  }

  /**
   * Runs a synchronous unit of work at once when no async transaction holds the connection, else
   * after it. The token hot path passes a better-sqlite3 transaction built once (`.immediate`: the
   * write lock is taken first, so writers queue on the busy timeout instead of failing to upgrade).
   */
  exclusive<T>(work: () => T): Promise<T> {
    if (!this.lock.isHeld || this.insideHeldTransaction()) {
      try {
        return Promise.resolve(work());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.lock.run(work);
  }

  /**
   * Runs synchronous `work` with no busy wait: a write lock held elsewhere fails it at once
   * (SQLITE_BUSY) instead of blocking the thread, so a caller can wait in between attempts and
   * still answer signals.
   */
  withoutBusyWait<T>(work: () => T): T {
    this.client.pragma("busy_timeout = 0");
    try {
      return work();
    } finally {
      this.client.pragma(`busy_timeout = ${this.lockTimeoutMs}`);
    }
  }

  /** Once the open transaction is done: closes the connection when it is ours. */
  close(ownsConnection: boolean): Promise<void> {
    return this.lock.run(() => {
      if (ownsConnection && this.client.open) this.client.close();
    });
  }
}

/**
 * Runs `write` (one synchronous IMMEDIATE transaction) on the connection. With a signal, the wait
 * for the write lock happens between attempts in JavaScript rather than inside SQLite's busy
 * handler, so that an abort is heard while waiting (it rejects with the signal's reason, nothing
 * changed); once BEGIN IMMEDIATE succeeds the transaction runs to COMMIT.
 */
export async function immediateUnlessAborted<T>(connection: SqliteConnection, write: () => T, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return connection.exclusive(write);
  const deadline = Date.now() + connection.lockTimeoutMs;
  for (let pause = 1; ; pause = Math.min(2 * pause, 50)) {
    signal.throwIfAborted();
    try {
      // a busy BEGIN IMMEDIATE changed nothing
      return await connection.exclusive(() => connection.withoutBusyWait(write));
    } catch (error) {
      if (!errorCode(error)?.startsWith("SQLITE_BUSY") || Date.now() >= deadline) throw error;
    }
    await pauseUnlessAborted(pause, signal);
  }
}

function pauseUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
