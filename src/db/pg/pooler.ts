/**
 * Transaction poolers in front of PostgreSQL (PgBouncer, Supavisor in transaction mode), found on
 * a database's first statement, and the lock bound kept through one.
 *
 * Such a pooler lends a server connection for one transaction at a time, so nothing set for the
 * session holds: PgBouncer refuses the lock_timeout startup parameter outright ("unsupported
 * startup parameter"), or is configured to drop it (ignore_startup_parameters), and a named
 * prepared statement made on one server connection is missing on the next. Found either way, the
 * database runs pooled: no named prepared statements, `SET LOCAL lock_timeout` first in every
 * transaction briefdb opens, and each statement sent outside a transaction sent inside a short one
 * of its own, so the bound holds for it too. A direct connection keeps the startup parameter and
 * its one round trip per statement.
 */
import type postgres from "postgres";
import { errorChain, errorCode } from "../driver-errors.js";
import { cancelOnServer } from "./cancel.js";

type Rows = postgres.RowList<postgres.Row[]>;
type StatementParameters = Parameters<postgres.Sql["unsafe"]>[1];
type QueryOptions = Parameters<postgres.Sql["unsafe"]>[2];
type TransactionBody<T> = (tx: postgres.TransactionSql) => T | Promise<T>;
/** What of postgres.js's parsed options briefdb changes once it finds a pooler (read at each connect and each query). */
interface SwitchableOptions {
  prepare: boolean;
  connection: Record<string, unknown>;
}

const SETTING = "SELECT setting FROM pg_settings WHERE name = 'lock_timeout'";
const RESOLVED = Promise.resolve();

/** Whether a database object's server connections come through a transaction pooler; found once. */
export class PoolerDetection {
  private result: "direct" | "pooled" | undefined;
  private finding: Promise<void> | undefined;

  /** `lockTimeoutMs`: the bound the pool asks for at startup (0: no limit). */
  constructor(
    private readonly client: postgres.Sql,
    readonly lockTimeoutMs: number,
  ) {}

  /** True once ready() found a pooler. */
  get pooled(): boolean {
    return this.result === "pooled";
  }

  /** Known without a round trip: ready() has resolved. */
  get known(): boolean {
    return this.result !== undefined;
  }

  /**
   * Finds out, on the pool's first connection (a failure, such as an unreachable server, is the
   * caller's and is tried again on the next call). Nothing else may be sent before it resolves:
   * a refused startup parameter is taken out of the pool's options for the connections after it.
   */
  ready(): Promise<void> {
    if (this.result !== undefined) return RESOLVED;
    this.finding ??= this.detect().then(
      (result) => void (this.result = result),
      (error: unknown) => {
        this.finding = undefined;
        throw error;
      },
    );
    return this.finding;
  }

  /** Bounds lock waits for the rest of the transaction it runs in (a utility statement: no snapshot, so SET TRANSACTION may follow). */
  get boundStatement(): string {
    return `SET LOCAL lock_timeout = ${this.lockTimeoutMs}`;
  }

  /** Puts the bound back after a statement waited without one (the session's own, or through a pooler the transaction's). */
  get restoreStatement(): string {
    return this.pooled ? this.boundStatement : "SET LOCAL lock_timeout TO DEFAULT";
  }

  private async detect(): Promise<"direct" | "pooled"> {
    const options = this.client.options as unknown as SwitchableOptions;
    let setting: number;
    try {
      const [row] = await this.client.unsafe<Array<{ setting: string }>>(SETTING, [], { prepare: false });
      setting = Number(row?.setting);
    } catch (error) {
      if (!refusesLockTimeout(error)) throw error;
      delete options.connection.lock_timeout;
      options.prepare = false;
      return "pooled";
    }
    if (setting === this.lockTimeoutMs) return "direct";
    options.prepare = false;
    return "pooled";
  }
}

/** PgBouncer's answer to a startup parameter it does not pass on: SQLSTATE 08P01 "unsupported startup parameter: lock_timeout". */
function refusesLockTimeout(error: unknown): boolean {
  if (errorCode(error) !== "08P01") return false;
  return errorChain(error).some((link) => typeof link.message === "string" && /unsupported startup parameter: lock_timeout/.test(link.message));
}

/**
 * The pool as briefdb's statements and drizzle use it (`unsafe`, `begin` and `options`, all they
 * call): each waits for the detection, then goes as it is on a direct connection, or pooled as the
 * module header says. Typed as the pool it stands for; it has nothing else.
 */
export function poolerAware(client: postgres.Sql, detection: PoolerDetection): postgres.Sql {
  const unsafe = (text: string, parameters?: StatementParameters, options?: QueryOptions) => {
    if (detection.known && !detection.pooled) return client.unsafe(text, parameters, options);
    return new DeferredQuery((send) => runStatement(client, detection, (sql) => send(sql.unsafe(text, parameters, options))));
  };
  const begin = async <T>(first: string | TransactionBody<T>, second?: TransactionBody<T>) => {
    const [mode, body] = typeof first === "string" ? [first, second as TransactionBody<T>] : ["", first];
    await detection.ready();
    if (!detection.pooled) return client.begin(mode, body);
    return client.begin(mode, (tx) => {
      // sent ahead of the body's first statement on the same connection, not waited for: a
      // failure of it fails that statement, and the transaction answers with this one's error
      tx.unsafe(detection.boundStatement).execute();
      return body(tx);
    });
  };
  return { unsafe, begin, options: client.options } as unknown as postgres.Sql;
}

/** One statement outside a transaction: on the pool as it is, or through a pooler inside a short transaction that bounds its lock waits. */
async function runStatement(client: postgres.Sql, detection: PoolerDetection, send: (sql: postgres.Sql | postgres.TransactionSql) => Promise<Rows>) {
  await detection.ready();
  if (!detection.pooled) return send(client);
  return client.begin(async (tx) => {
    const [, rows] = await Promise.all([tx.unsafe(detection.boundStatement), send(tx)]);
    return rows;
  });
}

/**
 * A statement sent once the detection is known: awaited like postgres.js's own query (and as
 * lazily, on the first `then`), with the two of its methods briefdb and drizzle use, `values()`
 * (called before it is sent) and `cancel()`.
 */
class DeferredQuery implements PromiseLike<Rows> {
  private started: Promise<Rows> | undefined;
  private valuesOnly = false;
  private cancelled = false;
  private sent: postgres.PendingQuery<postgres.Row[]> | undefined;

  constructor(private readonly run: (send: (query: postgres.PendingQuery<postgres.Row[]>) => Promise<Rows>) => Promise<Rows>) {}

  values(): this {
    this.valuesOnly = true;
    return this;
  }

  /** A cancel request for the statement once sent; before that, it is never sent (57014, as the server would say). */
  cancel(): void {
    this.cancelled = true;
    if (this.sent !== undefined) cancelOnServer(this.sent);
  }

  then<A = Rows, B = never>(onfulfilled?: ((rows: Rows) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    this.started ??= this.run((query) => {
      if (this.cancelled) {
        return Promise.reject(Object.assign(new Error("canceling statement due to user request"), { code: "57014" }));
      }
      this.sent = query;
      return (this.valuesOnly ? query.values() : query) as unknown as Promise<Rows>;
    });
    return this.started.then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Rows | B> {
    return this.then(undefined, onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<Rows> {
    return this.then().finally(onfinally);
  }
}
