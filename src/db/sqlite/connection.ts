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
import { closedUnderTransaction, databaseClosed } from "../misuse.js";
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
  /** Ends the open transaction before its operation does (close() after its grace): rolled back. */
  private abandonHeld: (() => void) | undefined;
  private closed = false;

  constructor(
    readonly client: Database.Database,
    readonly orm: SqliteOrm,
    /** How long a statement waits for another connection's write lock (the busy timeout). */
    readonly lockTimeoutMs: number,
    /** The database's name, for the messages. */
    readonly display: string,
  ) {}

  /**
   * Runs `operation` in one IMMEDIATE transaction, queued behind the open one; from inside it, in a
   * savepoint. `ended` is called once the transaction (or savepoint) is over, whether or not the
   * operation is.
   */
  transaction<T>(operation: () => Promise<T>, ended: () => void = () => {}): Promise<T> {
    if (this.insideHeldTransaction()) return this.savepoint(operation, ended);
    return this.lock.run(async () => {
      this.refuseWhenClosed();
      this.client.exec("BEGIN IMMEDIATE");
      const token = {};
      this.heldBy = token;
      let abandoned = false;
      try {
        const result = await Promise.race([
          this.holder.run(token, operation),
          new Promise<never>((_, reject) => {
            this.abandonHeld = () => {
              abandoned = true;
              reject(closedUnderTransaction(this.display));
            };
          }),
        ]);
        this.client.exec("COMMIT");
        return result;
      } catch (error) {
        if (this.client.inTransaction) this.client.exec("ROLLBACK");
        throw abandoned ? closedUnderTransaction(this.display) : error;
      } finally {
        this.heldBy = undefined;
        this.abandonHeld = undefined;
        ended();
      }
    });
  }

  /** A transaction inside the open one: undone alone when its operation fails. */
  private async savepoint<T>(operation: () => Promise<T>, ended: () => void): Promise<T> {
    const name = `briefdb_nested_${++this.savepoints}`;
    this.client.exec(`SAVEPOINT ${name}`);
    try {
      const result = await operation();
      this.client.exec(`RELEASE ${name}`);
      return result;
    } catch (error) {
      if (this.client.inTransaction) this.client.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
      throw error;
    } finally {
      ended();
    }
  }

  /** Throws CLOSED once close() has closed the connection (or given up waiting for its transaction). */
  refuseWhenClosed(): void {
    if (this.closed) throw databaseClosed(this.display);
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
    const refusing = () => (this.refuseWhenClosed(), work());
    if (!this.lock.isHeld || this.insideHeldTransaction()) {
      try {
        return Promise.resolve(refusing());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.lock.run(refusing);
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

  /**
   * Once the open transaction is done, or at `deadline` (epoch ms) rolled back with its operation
   * still running: closes the connection when it is ours. Every call after it is refused (CLOSED).
   */
  async close(ownsConnection: boolean, deadline: number): Promise<void> {
    const closing = this.lock.run(() => {
      this.closed = true;
      if (ownsConnection && this.client.open) this.client.close();
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()))));
    if (await Promise.race([closing.then(() => false), late])) {
      // what queued behind the open transaction is refused as it comes to the connection
      this.closed = true;
      this.abandonHeld?.();
    }
    clearTimeout(timer);
    await closing;
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
