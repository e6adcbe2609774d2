/**
 * What the slow-query report asks a dialect for: how it writes time in SQL, how to read its query
 * plans, whether an index exists, and the server's own statement statistics. Each dialect folder
 * implements these in its own files; core code reads the answers, never the dialect's name.
 */
import type { SQL } from "drizzle-orm";

/** Time values in SQL: epoch-millisecond integers on SQLite, timestamptz on PostgreSQL. */
export interface TimeSql {
  /** A timestamp column or expression, read as epoch milliseconds (a number). */
  epochMs(timestamp: SQL): SQL;
  /** Epoch milliseconds (a value, or an SQL expression) as a value for a timestamp column. */
  fromEpochMs(ms: number | SQL): SQL;
}

/** What a query plan says about how a query reads its rows. */
export interface PlanReading {
  /** The plan reads through an index (or primary key) and scans no table whole. */
  readonly usesIndex: boolean;
  /** Tables read row by row, whole. */
  readonly fullScans: readonly string[];
  /** Indexes the plan reads. */
  readonly indexes: readonly string[];
  /** Rows are sorted after they are read: no index serves the ORDER BY. */
  readonly sorts: boolean;
}

/** One statement from the server's statistics, costliest first. */
export interface ServerStatement {
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly rows: number;
}

export type ServerStatements =
  | { readonly available: true; readonly source: string; readonly statements: readonly ServerStatement[] }
  | { readonly available: false; readonly source: string; readonly hint: string };

export interface QueryInspector {
  /** Reads the lines of `explain()`. */
  readPlan(plan: readonly string[]): PlanReading;
  indexExists(name: string): Promise<boolean>;
  /** The server's costliest statements (pg_stat_statements), or null where the dialect keeps none. */
  serverStatements(limit: number): Promise<ServerStatements | null>;
}
