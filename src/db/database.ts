/**
 * The dialect contract: what a dialect implements, in five small roles (connection and queries,
 * ledger, holds, schema changes, abilities), and `BriefDatabase`, the object library users hold,
 * made of exactly those roles. Core code writes its queries with drizzle's dialect-neutral `sql`
 * tag and asks these roles for what differs between dialects, never the dialect's name. Adding a
 * dialect means one new folder beside sqlite/ and pg/ that implements them.
 */
import type { SQL } from "drizzle-orm";
import type { Executor } from "./executor.js";
import type { HoldStatements, TransactionHolds } from "./holds.js";
import type { QueryInspector, TimeSql } from "./inspection.js";
import type { SchemaChanges } from "./schema-changes.js";
import type { DialectName, Target } from "./target.js";
import type { ApplyOptions, BalanceChange, BatchOutcome, LedgerEntry } from "./ledger-values.js";

export type { Executor, Row } from "./executor.js";
export type { ApplyOptions, BalanceChange, BatchOutcome, FailedChange, LedgerEntry, TokenOperation } from "./ledger-values.js";

/** What a driver error means, whatever the dialect said it in. */
export type FailureKind =
  | "unreachable"
  /** The connection broke while in use: a statement sent on it may or may not have run. */
  | "connection_lost"
  | "auth_failed"
  /** The server answered: the database named in the URL does not exist there. */
  | "database_missing"
  /** Gave up waiting for a lock (PostgreSQL lock_timeout, SQLite's busy timeout). */
  | "lock_timeout"
  /** The server refused a write: it is read-only (PostgreSQL 25006, a standby). Nothing changed. */
  | "read_only"
  /** The statement was cancelled on the server (PostgreSQL 57014). */
  | "cancelled"
  | "unique_violation"
  | "check_violation"
  | "foreign_key_violation"
  | "undefined_table"
  | "retryable"
  | "other";

/**
 * The token hot path, with statements prepared once per connection. `apply` runs the conditional
 * UPDATE and its ledger INSERT in one transaction: a deduct needs `token_balance − held_tokens >= n`
 * (it never takes held tokens), a credit must not pass 2^53−1. It resolves to undefined when the
 * condition refused (no such user, too little balance, overflow) and rejects with a unique
 * violation when the idempotency key is taken.
 */
export interface LedgerStatements {
  apply(change: BalanceChange, options?: ApplyOptions): Promise<LedgerEntry | undefined>;
  findByKey(idempotencyKey: string): Promise<LedgerEntry | undefined>;
  /**
   * Present when the database batches (the default, `OpenOptions.batch`): queues `change` with the
   * operations called concurrently beside it and applies it in the next batch, judged on its own
   * (see BatchOutcome). Never inside a transaction.
   */
  submit?(change: BalanceChange): Promise<BatchOutcome>;
}

/** A column of a bulk insert and how its values are written. */
export interface BulkColumn {
  readonly name: string;
  /** Timestamps are given as epoch milliseconds; each dialect writes them its own way. */
  readonly type: "text" | "integer" | "boolean" | "timestamp";
}

/** One row of a bulk insert: values in the order of its columns. */
export type BulkRow = ReadonlyArray<string | number | boolean | null>;

/** A transaction that can also load many rows fast. */
export interface BulkWriter extends Executor {
  /** Inserts every row of every batch into `table`; resolves to how many rows it inserted. */
  insert(table: string, columns: readonly BulkColumn[], batches: AsyncIterable<readonly BulkRow[]>): Promise<number>;
}

/**
 * A transaction briefdb opened: raw SQL as on the database, the app's own Drizzle queries on
 * briefdb's schema, and the token hot path — all committing or rolling back together.
 */
export interface Transaction<TxOrm = unknown> extends Executor {
  /** Drizzle over this transaction, typed with briefdb's schema of the dialect. */
  readonly drizzle: TxOrm;
  /** Credits and deductions inside this transaction (not prepared: a transaction is not the hot path). */
  readonly ledger: LedgerStatements;
  /** Expired holds settled inside this transaction, so that a deduct in it can use the room they free. */
  readonly holds: TransactionHolds;
}

export interface CloseOptions {
  /** How long the calls already made may take to finish, in milliseconds. Default 5000. */
  readonly timeoutMs?: number;
}

/** How the PostgreSQL pool is used, as the server sees it. */
export interface PoolUse {
  /** The pool's configured size. */
  readonly max: number;
  /** This client's server connections to the database (same application_name), by state. */
  readonly connections: Readonly<Record<string, number>>;
}

/** How much a transaction sees of others running beside it (PostgreSQL's levels). */
export type IsolationLevel = "serializable" | "repeatable read" | "read committed";

export interface TransactionOptions {
  /**
   * How often a serialization failure or deadlock is retried, the operation run again from the
   * start, before giving up (PostgreSQL). Default 30, with jittered backoff.
   */
  readonly retries?: number;
  /**
   * PostgreSQL's isolation level. Default "serializable", as SQLite's transactions always are: a
   * read–then–write never loses a concurrent update; the loser fails with 40001 and is retried.
   * "read committed" is for callers who lock what they read themselves (`FOR UPDATE`) or take a
   * lock first and must then see what its previous holder committed. SQLite ignores it.
   */
  readonly isolation?: IsolationLevel;
}

/** What the dialect's cheap integrity check found (`health --deep`). */
/** The space a database takes on disk, as `compact` can change it. */
export interface StorageSize {
  /** SQLite: the file (pages × page size); PostgreSQL: briefdb's tables with their indexes and TOAST. */
  readonly bytes: number;
  /** Free pages kept inside that space, which `compact` gives back (SQLite's freelist); undefined when not known cheaply. */
  readonly freeBytes: number | undefined;
}

export interface IntegrityCheck {
  /** The check that ran, in words; null when the database offers none that is cheap. */
  readonly method: string | null;
  /** What it found damaged; empty when nothing (or nothing was checked). */
  readonly problems: readonly string[];
  /** Why nothing was checked, when method is null. */
  readonly note?: string;
  /** What to do about the problems. */
  readonly hint?: string;
}

/** Role 1, connection and queries: the connection(s), raw SQL, transactions, and closing. */
export interface DialectConnection<Orm = unknown, TxOrm = unknown> extends Executor {
  readonly dialect: DialectName;
  readonly target: Target;
  /**
   * Runs `operation` in one transaction: commit when it resolves, roll back when it throws. On
   * SQLite transactions on one connection are queued, never interleaved; on PostgreSQL they are
   * SERIALIZABLE unless `options.isolation` says otherwise, and serialization failures and
   * deadlocks are retried a bounded number of times: `operation` may run more than once.
   */
  transaction<T>(operation: (tx: Transaction<TxOrm>) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Drizzle over briefdb's connection, typed with the dialect's schema, for the app's own queries. */
  readonly drizzle: Orm;
  /** False when the app handed briefdb its own connection: close() then leaves it open. */
  readonly ownsConnection: boolean;
  /** How the connection pool is used, where there is one (PostgreSQL). */
  poolUse?(): Promise<PoolUse>;
  /** Whether briefdb's table `name` exists in the schema its tables live in (schemaChanges.ownSchema), whatever the search_path. */
  tableExists(name: string): Promise<boolean>;
  serverVersion(): Promise<string>;
  /**
   * Lets the calls already made finish — background writes (src/db/background-writes.ts), batched
   * changes, statements and transactions in flight — for up to `timeoutMs` (default 5000), then
   * closes the connection(s). What still runs then is stopped: a statement is cancelled, an open
   * transaction rolled back, its withTransaction answering CLOSED. Every call after it is refused
   * with CLOSED, nothing changed. Resolves within about `timeoutMs` + 3 s whatever the server does
   * (then `closedCleanly` says whether it could close everything).
   */
  close(options?: CloseOptions): Promise<void>;
  /**
   * Once close() resolved: false when the server did not let go in time — a statement it never
   * answered, even cancelled, or a connection it never closed (a server frozen mid-TCP). Those
   * connections are abandoned where they are, and may keep the process alive until the server
   * answers. A server that is gone (connections reset, new ones refused) leaves nothing open: true,
   * even with a statement the driver left unanswered on a connection it reset.
   * Undefined before close() resolved.
   */
  readonly closedCleanly?: boolean | undefined;
}

/** Role 2, the ledger: the token hot path, prepared on first use. */
export interface DialectLedger {
  readonly ledger: LedgerStatements;
}

/** Role 3, holds: the atomic writes of token holds, prepared on first use. */
export interface DialectHolds {
  readonly holds: HoldStatements;
}

/** Role 4, schema changes: the dialect's migrations and what applying them does to a live database. */
export interface DialectSchema {
  /** Folder of this dialect's generated migrations (drizzle/sqlite or drizzle/pg). */
  readonly migrationsFolder: string;
  /**
   * Runs `operation` in a transaction that holds the migration lock, so that two migrators on one
   * database take turns (PostgreSQL advisory lock; SQLite BEGIN IMMEDIATE).
   */
  withMigrationLock<T>(operation: (tx: Executor) => Promise<T>): Promise<T>;
  /** What migration statements lock, table sizes, INVALID indexes, and online index changes. */
  readonly schemaChanges: SchemaChanges;
}

/** Role 5, abilities: what core asks the dialect for where the two databases differ. */
export interface DialectAbilities {
  /**
   * As the first statement of the transaction `tx`: waits for, then holds until `tx` ends, the
   * lock that seeds and clears take turns on, so that two of them at once run one after the other
   * and the second sees what the first committed (PostgreSQL: READ COMMITTED and a
   * transaction-scoped advisory lock; SQLite: nothing, its write transactions already exclude
   * each other).
   */
  lockTestData(tx: Executor): Promise<void>;
  /**
   * Runs `operation` in one write transaction whose writer bulk-inserts the way the dialect does
   * it best (SQLite: one prepared statement in a loop; PostgreSQL: multi-row INSERTs), streaming
   * batches so memory stays flat however many rows are loaded.
   */
  bulkWrite<T>(operation: (writer: BulkWriter) => Promise<T>): Promise<T>;
  /**
   * Checks that the stored data is intact, as far as the database can tell cheaply (SQLite
   * `pragma quick_check`; PostgreSQL the data-checksum failures it has counted, when checksums are
   * on). Damage is reported in `problems`, not thrown.
   */
  checkIntegrity(): Promise<IntegrityCheck>;
  /** How much space the database takes, and how much of it is free (see StorageSize). */
  storage(): Promise<StorageSize>;
  /**
   * Gives free space back to the disk, outside any transaction: SQLite `VACUUM` (then a WAL
   * checkpoint, so the file itself shrinks); PostgreSQL `VACUUM` of briefdb's tables, which
   * truncates their empty pages at the end.
   */
  compact(): Promise<void>;
  /** The query plan, one line per step (SQLite EXPLAIN QUERY PLAN, PostgreSQL EXPLAIN). */
  explain(query: SQL): Promise<string[]>;
  /** How this dialect writes time values in SQL. */
  readonly time: TimeSql;
  /** Reads plans, indexes and statement statistics for the slow-query report. */
  readonly inspector: QueryInspector;
  /** Reads a driver error (unwrapping drizzle's wrapper) as one of the kinds core code handles. */
  classify(error: unknown): FailureKind;
}

/**
 * A database briefdb talks to: the five roles, nothing more. `Orm` is the Drizzle instance over its
 * connection and `TxOrm` the Drizzle handle inside one of its transactions: typed when the dialect
 * is known (the app handed its own client, or used `drizzleOf` from briefdb/schema/pg or
 * briefdb/schema/sqlite).
 */
export interface BriefDatabase<Orm = unknown, TxOrm = unknown>
  extends DialectConnection<Orm, TxOrm>,
    DialectLedger,
    DialectHolds,
    DialectSchema,
    DialectAbilities {}

export interface OpenOptions {
  /** Connect timeout in milliseconds (PostgreSQL). Default 5000. */
  readonly timeoutMs?: number;
  /** Pool size (PostgreSQL). Default 10. */
  readonly poolSize?: number;
  /**
   * How long a call waits for a pooled connection while transactions hold every one, in
   * milliseconds, before failing with POOL_TIMEOUT (nothing sent, nothing changed); 0 is no limit.
   * Default 30000 (PostgreSQL).
   */
  readonly poolTimeoutMs?: number;
  /** Named prepared statements. Default true; off by itself through a transaction pooler (PgBouncer, Supavisor). */
  readonly prepare?: boolean;
  /** Create the SQLite file when it does not exist. Default true. */
  readonly create?: boolean;
  /**
   * With create: false, read a SQLite file that does not exist as an empty database (nothing is
   * created), for read-only looks such as `migrate --status` on a database not made yet.
   */
  readonly missingIsEmpty?: boolean;
  /**
   * How long a statement waits for a lock another connection holds before failing with
   * LOCK_TIMEOUT, in milliseconds; 0 is no limit. Default 15000. PostgreSQL: the session's
   * lock_timeout, sent as a startup parameter, or through a transaction pooler (which refuses or
   * drops it) SET LOCAL in every transaction; SQLite: the busy timeout.
   */
  readonly lockTimeoutMs?: number;
  /** SQLite busy timeout in milliseconds; the older name of lockTimeoutMs, which wins. */
  readonly busyTimeoutMs?: number;
  /**
   * Batch concurrent token operations (docs/architecture.md "Batching"): while one batch is being
   * applied, new operations queue and go together as the next (one transaction, one commit).
   * Default true; operations inside a transaction or given an abort signal never batch.
   */
  readonly batch?: boolean;
}
