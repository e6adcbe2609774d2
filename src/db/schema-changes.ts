/**
 * What a dialect says about applying schema changes to a live database: what each migration
 * statement is, which lock it takes and what that lock blocks, how big the tables are, which
 * indexes are left INVALID and which constraints NOT VALID, and — where the server can change the schema without blocking writes —
 * the means to do so (PostgreSQL's CONCURRENTLY, and constraints added NOT VALID then validated
 * apart). Core code (the hazard check, the online runner)
 * reads these answers and never the dialect's name.
 */
import type { SQL } from "drizzle-orm";
import type { Executor } from "./executor.js";
import type { StatementShape } from "./statement-shape.js";

export type { StatementKind, StatementShape } from "./statement-shape.js";

/** The lock a statement takes, as someone deploying to a busy database needs to know it. */
export interface LockHazard {
  /** The lock's name in the server's terms (e.g. "SHARE", "ACCESS EXCLUSIVE", "write lock"). */
  readonly lock: string;
  readonly blocksReads: boolean;
  readonly blocksWrites: boolean;
  /**
   * How long it is held: "brief" (catalog change only) or while it scans, builds or rewrites; "until
   * the transaction ends" when a later statement of its transaction scans or builds on a big table.
   */
  readonly holds:
    | "brief"
    | "while it builds the index"
    | "while it scans the table"
    | "until the statement ends"
    | "until the transaction ends";
}

export interface TableSize {
  /** Rows: the server's estimate on PostgreSQL (null when never analyzed), an exact count on SQLite. */
  readonly rows: number | null;
  readonly estimated: boolean;
  /** Bytes on disk with indexes, where the server reports it. */
  readonly bytes: number | null;
}

export interface InvalidIndex {
  readonly index: string;
  readonly table: string;
}

/**
 * A constraint added NOT VALID and not validated since: new and updated rows are checked, the rows
 * older than it never were.
 */
export interface NotValidConstraint {
  readonly constraint: string;
  readonly table: string;
}

/** What the catalog says of a constraint: checked against every row, added NOT VALID, or not there. */
export type ConstraintState = "valid" | "not-valid" | "missing";

/** A build's progress as the server reports it (pg_stat_progress_create_index). */
export interface IndexBuildProgress {
  readonly index: string;
  readonly phase: string;
  readonly done: number;
  readonly total: number;
}

/** One connection holding the migration lock across many transactions and statements. */
export interface MigrationSession extends Executor {
  /** The server process of this connection (for its progress, and for cancelling it). */
  readonly pid: number;
  /** Runs `operation` in a transaction on this connection. */
  transaction<T>(operation: (tx: Executor) => Promise<T>): Promise<T>;
  /**
   * Runs `statements` in one transaction sent to the server at once, so that a lock one of them
   * takes is held for the server's time only, never across the client's round trips (a client
   * on a loaded machine, or pausing to collect garbage, held the app's writes waiting). All or
   * nothing: on a failure the transaction is rolled back and the first failure thrown.
   */
  atomically(statements: readonly SQL[]): Promise<void>;
  /** How long a statement may wait for a lock before failing; 0 waits as long as it takes. */
  setLockTimeout(ms: number): Promise<void>;
}

/** Schema changes that do not block writes (index builds, constraint validation), and their statements. */
export interface OnlineSchemaChanges {
  /** Runs `operation` on one connection that holds the migration lock for the whole run. */
  withSession<T>(operation: (session: MigrationSession) => Promise<T>): Promise<T>;
  /** The CREATE INDEX of `shape` built without blocking writes, under `name` when given. */
  buildStatement(shape: StatementShape, name?: string): string;
  dropStatement(index: string): string;
  renameStatement(from: string, to: string): string;
  /** Rebuilds an index left INVALID without blocking writes. */
  rebuildStatement(index: string): string;
  indexState(executor: Executor, index: string): Promise<"valid" | "invalid" | "missing">;
  constraintState(executor: Executor, table: string, constraint: string): Promise<ConstraintState>;
  /** The progress of the index build running on server process `pid`, if one is. */
  buildProgress(pid: number): Promise<IndexBuildProgress | null>;
  /** The ADD CONSTRAINT of `shape` made without checking existing rows (new rows are checked). */
  notValidStatement(shape: StatementShape): string;
  /** Checks existing rows against a constraint added without that check, without blocking writes. */
  validateStatement(table: string, constraint: string): string;
  /** Whether a failure was a lock wait that ran out (lock_timeout), which a retry may pass. */
  isLockTimeout(error: unknown): boolean;
  /** Whether a failure was existing rows breaking a constraint being validated. */
  isConstraintViolation(error: unknown): boolean;
  /** Longest name an index may have. */
  readonly maxNameLength: number;
}

export interface SchemaChanges {
  /**
   * The schema briefdb's tables live in, whatever the session's search_path says (PostgreSQL:
   * public, which the generated migrations name in their foreign keys; SQLite: main). The
   * migration records are read there, and migrations applied there.
   */
  readonly ownSchema: string;
  /** What each statement of this dialect's migration files is. */
  describe(statements: readonly string[]): Promise<StatementShape[]>;
  /** The lock `shape` takes, applied online (CONCURRENTLY) or as written. */
  lockOf(shape: StatementShape, online: boolean): LockHazard;
  /** The table an existing index is on (a DROP INDEX names only the index), or null. */
  tableOfIndex(index: string): Promise<string | null>;
  /** The table's size, or null when it does not exist. */
  tableSize(table: string): Promise<TableSize | null>;
  /** Indexes left INVALID by an interrupted or failed build (not ones being built right now). */
  invalidIndexes(): Promise<InvalidIndex[]>;
  /** Constraints left NOT VALID on the tables the search_path reaches (by an online migration or by hand); none where the dialect has no NOT VALID. */
  notValidConstraints(): Promise<NotValidConstraint[]>;
  /** Non-blocking schema changes; null where the dialect has none (SQLite). */
  readonly online: OnlineSchemaChanges | null;
}
