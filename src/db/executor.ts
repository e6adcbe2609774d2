/** Running queries: what the database, a transaction on it and a migration session have in common. */
import type { SQL } from "drizzle-orm";

export type Row = Record<string, unknown>;

/** Runs queries: the database itself, or a transaction opened on it. */
export interface Executor {
  /** The rows of a query, with column names as the database returns them. */
  all<T extends Row = Row>(query: SQL): Promise<T[]>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(query: SQL): Promise<number>;
  /** Runs a script of statements separated by `;` with no parameters (DDL, migrations). */
  exec(script: string): Promise<void>;
}
