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

/** A value read through `TimeSql.epochMs` (PostgreSQL gives fractions: microseconds) as a Date. */
export function dateFromEpochMs(value: unknown): Date {
  return new Date(Math.round(Number(value)));
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
  /** What this connection talks to, for people: "primary, as app", "replica (read-only), as app", "embedded". */
  serverRole(): Promise<string>;
  /** The server's place in streaming replication (PostgreSQL), or null where the dialect has none (SQLite). */
  replication(): Promise<Replication | null>;
  /**
   * Every server of the URL's host list that answers as a primary, each asked on its own
   * connection (two or more: a split brain); null where the URL names one server (or SQLite).
   */
  listedPrimaries(): Promise<readonly string[] | null>;
}

/** One standby as its primary sees it (pg_stat_replication). */
export interface StandbyLink {
  /** Its application_name (what synchronous_standby_names names). */
  readonly name: string;
  readonly client: string | null;
  /** "streaming", "catchup", "startup", "backup", "stopping". */
  readonly state: string;
  /** "sync", "quorum", "potential" or "async". */
  readonly syncState: string;
  /** WAL the primary has written that the standby has not replayed; null when the role may not read it. */
  readonly lagBytes: number | null;
  /** How long the standby's replay trails the primary's commits (replay_lag); null when idle or unknown. */
  readonly replayLagSeconds: number | null;
}

/** Where this connection's server stands in replication, and what it knows of its peers. */
export type Replication =
  | {
      readonly role: "primary";
      /** The server's own address and port, as it sees them (null over a Unix socket). */
      readonly address: string | null;
      readonly port: number | null;
      readonly synchronousStandbyNames: string;
      /** synchronous_commit of this session: "on", "remote_apply", "remote_write", "local" or "off". */
      readonly synchronousCommit: string;
      readonly standbys: readonly StandbyLink[];
    }
  | {
      readonly role: "standby";
      readonly address: string | null;
      readonly port: number | null;
      /** A WAL receiver is streaming from a primary. */
      readonly receiving: boolean;
      /** The primary it streams from ("host:port"), when it streams and the role may read it. */
      readonly upstream: string | null;
      /** WAL received and not yet replayed. */
      readonly replayLagBytes: number | null;
      /** Since the last replayed commit was made on the primary; 0 when all that was received is replayed. */
      readonly replayLagSeconds: number | null;
    };

/** How a dialect's plan lines name what they read; each pattern's first group is a table or an index. */
export interface PlanPatterns {
  readonly fullScans: readonly RegExp[];
  readonly indexes: readonly RegExp[];
  readonly sort: RegExp;
}

/** Reads plan lines with a dialect's patterns. A line reads a table whole or through an index, not both. */
export function readPlanLines(plan: readonly string[], patterns: PlanPatterns): PlanReading {
  const fullScans: string[] = [];
  const indexes: string[] = [];
  let sorts = false;
  for (const line of plan) {
    const scanned = firstGroup(line, patterns.fullScans);
    const index = scanned === undefined ? firstGroup(line, patterns.indexes) : undefined;
    if (scanned !== undefined) fullScans.push(scanned);
    if (index !== undefined) indexes.push(index);
    if (patterns.sort.test(line)) sorts = true;
  }
  return { usesIndex: indexes.length > 0 && fullScans.length === 0, fullScans, indexes, sorts };
}

function firstGroup(line: string, patterns: readonly RegExp[]): string | undefined {
  for (const pattern of patterns) {
    const name = pattern.exec(line)?.[1];
    if (name) return name.replace(/^"|"$/g, "");
  }
  return undefined;
}
