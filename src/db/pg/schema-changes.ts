/**
 * PostgreSQL's answers for schema changes on a live database: the lock each statement takes (the
 * server's lock table, as the documentation lists it), table sizes from pg_class statistics,
 * INVALID indexes from pg_index, NOT VALID constraints from pg_constraint, and schema changes that never block writes — CREATE / DROP INDEX
 * CONCURRENTLY, a FOREIGN KEY or CHECK added NOT VALID then VALIDATEd in its own transaction — on
 * one session that holds the migration advisory lock for the whole run.
 */
import { sql, type SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type postgres from "postgres";
import type { Executor, Row } from "../database.js";
import { errorCode } from "../driver-errors.js";
import type {
  ConstraintState,
  IndexBuildProgress,
  InvalidIndex,
  LockHazard,
  MigrationSession,
  NotValidConstraint,
  OnlineSchemaChanges,
  SchemaChanges,
  TableSize,
} from "../schema-changes.js";
import { quoteIdentifier } from "../sql-text.js";
import { sleep } from "../../retry.js";
import { ConnectionWatch, type ConnectionLoss } from "./dead-connection.js";
import { concurrentCreateIndex, describeStatements, notValidConstraint, type StatementShape } from "../statement-shape.js";

/**
 * One connection of its own for a migration session, and how to give it back; or, through a
 * transaction pooler, which has no session to give, one transaction in its place (./pooled-session.ts).
 */
export type SessionConnection =
  | { readonly sql: postgres.Sql; done(lost: boolean): Promise<void> }
  | { inTransaction<T>(operation: (session: MigrationSession) => Promise<T>): Promise<T> };

/** Opens a session's connection; `onClose` is called as soon as it closes. */
export type ConnectSession = (onClose: () => void) => Promise<SessionConnection>;

/**
 * The schema briefdb's tables live in: the generated migrations name "public" in their foreign
 * keys, so their tables must be there; an app's search_path (other, public) must not move them.
 */
export const OWN_SCHEMA = "public";
/** For the migration's session (or, LOCAL, its transaction): unqualified names are briefdb's schema's. */
export function pinOwnSchema(scope: "session" | "transaction"): string {
  return `SET ${scope === "transaction" ? "LOCAL " : ""}search_path TO ${OWN_SCHEMA}`;
}

/** How often a migrator waiting for another one tries the migration lock again. */
const LOCK_POLL_MS = 250;

const NONE: Pick<LockHazard, "blocksReads" | "blocksWrites"> = { blocksReads: false, blocksWrites: false };
const WRITES: Pick<LockHazard, "blocksReads" | "blocksWrites"> = { blocksReads: false, blocksWrites: true };
const ALL: Pick<LockHazard, "blocksReads" | "blocksWrites"> = { blocksReads: true, blocksWrites: true };

export class PgSchemaChanges implements SchemaChanges {
  readonly online: OnlineSchemaChanges;
  readonly ownSchema = OWN_SCHEMA;

  constructor(
    private readonly db: Executor,
    connectSession: ConnectSession,
    migrationLockKey: number,
    isLoss: ConnectionLoss,
  ) {
    this.online = new PgOnlineSchemaChanges(db, connectSession, migrationLockKey, isLoss);
  }

  describe(statements: readonly string[]): Promise<StatementShape[]> {
    return describeStatements(statements);
  }

  lockOf(shape: StatementShape, online: boolean): LockHazard {
    switch (shape.kind) {
      case "create-index":
        return online || shape.concurrent
          ? { lock: "SHARE UPDATE EXCLUSIVE", ...NONE, holds: "while it builds the index" }
          : { lock: "SHARE", ...WRITES, holds: "while it builds the index" };
      case "drop-index":
        return online || shape.concurrent
          ? { lock: "SHARE UPDATE EXCLUSIVE", ...NONE, holds: "brief" }
          : { lock: "ACCESS EXCLUSIVE", ...ALL, holds: "brief" };
      case "rename-index":
        // on the index only, since PostgreSQL 12 (measured: pg_locks shows nothing on its table)
        return { lock: "SHARE UPDATE EXCLUSIVE", ...NONE, holds: "brief" };
      case "add-foreign-key":
        // on the table and the referenced one; online (NOT VALID) it checks no existing row
        return { lock: "SHARE ROW EXCLUSIVE", ...WRITES, holds: online || shape.notValid ? "brief" : "while it scans the table" };
      case "add-check":
        return { lock: "ACCESS EXCLUSIVE", ...ALL, holds: online || shape.notValid ? "brief" : "while it scans the table" };
      case "validate-constraint":
        // and ROW SHARE on a foreign key's referenced table: neither blocks writes
        return { lock: "SHARE UPDATE EXCLUSIVE", ...NONE, holds: "while it scans the table" };
      case "add-column":
        return { lock: "ACCESS EXCLUSIVE", ...ALL, holds: "brief" };
      case "write-rows":
        return { lock: "ROW EXCLUSIVE", ...NONE, holds: "until the statement ends" };
      case "create-table":
        return { lock: "ACCESS EXCLUSIVE (new table)", ...NONE, holds: "brief" };
      case "drop-table":
        return { lock: "ACCESS EXCLUSIVE", ...ALL, holds: "brief" };
      default:
        // ALTER TABLE and anything not recognised: the strongest lock, held until the statement
        // ends (a type change or a volatile default rewrites the whole table under it).
        return { lock: "ACCESS EXCLUSIVE", ...ALL, holds: "until the statement ends" };
    }
  }

  async tableOfIndex(index: string): Promise<string | null> {
    const [row] = await this.db.all<{ table: string }>(sql`
      SELECT t.relname AS table FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE i.relname = ${index} AND pg_table_is_visible(i.oid)`);
    return row?.table ?? null;
  }

  async tableSize(table: string): Promise<TableSize | null> {
    const [row] = await this.db.all<{ reltuples: number | string; bytes: number | string; heap: number | string }>(sql`
      SELECT c.reltuples, pg_total_relation_size(c.oid) AS bytes, pg_relation_size(c.oid) AS heap
      FROM pg_class c WHERE c.oid = to_regclass(${quoteIdentifier(table)})`);
    if (row === undefined) return null;
    const reltuples = Number(row.reltuples);
    // -1: never vacuumed or analyzed; an empty heap is surely empty, anything else is unknown
    const rows = reltuples >= 0 ? Math.round(reltuples) : Number(row.heap) === 0 ? 0 : null;
    return { rows, estimated: true, bytes: Number(row.bytes) };
  }

  invalidIndexes(): Promise<InvalidIndex[]> {
    return this.db.all<{ index: string; table: string }>(sql`
      SELECT i.relname AS index, t.relname AS table
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      WHERE NOT x.indisvalid
        AND pg_table_is_visible(i.oid)
        AND x.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index WHERE index_relid IS NOT NULL)
      ORDER BY i.relname`);
  }

  /**
   * On the tables an unqualified name reaches (pg_table_is_visible: the search_path, as the
   * VALIDATE statements briefdb writes resolve them), not `current_schema()::regnamespace`, which
   * reads the schema's name as SQL and fails on one that needs quoting ("Side App").
   */
  notValidConstraints(): Promise<NotValidConstraint[]> {
    return this.db.all<{ constraint: string; table: string }>(sql`
      SELECT c.conname AS constraint, t.relname AS table
      FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
      WHERE NOT c.convalidated AND pg_table_is_visible(t.oid)
      ORDER BY t.relname, c.conname`);
  }
}

class PgOnlineSchemaChanges implements OnlineSchemaChanges {
  readonly maxNameLength = 63;

  constructor(
    private readonly db: Executor,
    private readonly connectSession: ConnectSession,
    private readonly migrationLockKey: number,
    private readonly isLoss: ConnectionLoss,
  ) {}

  async withSession<T>(operation: (session: MigrationSession) => Promise<T>): Promise<T> {
    // the session's lock and settings die with its backend: nothing more is sent once it closed
    // (a pool of one would connect again, and run the rest without them)
    const watch = new ConnectionWatch(this.isLoss);
    const session = await this.connectSession(() => watch.end(new Error("the migration session's connection closed")));
    if ("inTransaction" in session) return session.inTransaction(operation);
    const connection = watch.guard(session.sql);
    try {
      // Statements here may run for minutes (index builds): no statement timeout; and a build
      // whose client died (SIGTERM, lost network) stops within a second instead of running on.
      await connection.unsafe("SET statement_timeout = 0");
      await connection.unsafe("SET client_connection_check_interval = '1s'");
      // another migrator may hold the lock for a long build: wait for it however long (each step
      // then sets the lock_timeout it needs)
      await connection.unsafe("SET lock_timeout = 0");
      // tried, not waited for in one statement: a statement waiting here would hold a snapshot,
      // which the holder's CREATE INDEX CONCURRENTLY waits to end — a deadlock that failed one
      while (!(await tryLock(connection, this.migrationLockKey))) await sleep(LOCK_POLL_MS);
      try {
        // the migrations create their tables unqualified: in briefdb's schema, not the path's first
        await connection.unsafe(pinOwnSchema("session"));
        return await operation(sessionOver(connection, await backendPid(connection)));
      } finally {
        await connection.unsafe(`SELECT pg_advisory_unlock(${this.migrationLockKey})`).catch(() => {});
      }
    } finally {
      await session.done(watch.ended);
    }
  }

  buildStatement(shape: StatementShape, name?: string): string {
    return concurrentCreateIndex(shape.text, name);
  }

  dropStatement(index: string): string {
    return `DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdentifier(index)}`;
  }

  renameStatement(from: string, to: string): string {
    return `ALTER INDEX ${quoteIdentifier(from)} RENAME TO ${quoteIdentifier(to)}`;
  }

  rebuildStatement(index: string): string {
    return `REINDEX INDEX CONCURRENTLY ${quoteIdentifier(index)}`;
  }

  async indexState(executor: Executor, index: string): Promise<"valid" | "invalid" | "missing"> {
    const [row] = await executor.all<{ valid: boolean }>(sql`
      SELECT x.indisvalid AS valid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
      WHERE i.relname = ${index} AND pg_table_is_visible(i.oid)`);
    if (row === undefined) return "missing";
    return row.valid ? "valid" : "invalid";
  }

  async constraintState(executor: Executor, table: string, constraint: string): Promise<ConstraintState> {
    const [row] = await executor.all<{ valid: boolean }>(sql`
      SELECT convalidated AS valid FROM pg_constraint WHERE conname = ${constraint} AND conrelid = to_regclass(${quoteIdentifier(table)})`);
    if (row === undefined) return "missing";
    return row.valid ? "valid" : "not-valid";
  }

  async buildProgress(pid: number): Promise<IndexBuildProgress | null> {
    const [row] = await this.db.all<{ index: string; phase: string; done: number | string; total: number | string }>(sql`
      SELECT i.relname AS index, p.phase,
        CASE WHEN p.blocks_total > 0 THEN p.blocks_done ELSE p.tuples_done END AS done,
        CASE WHEN p.blocks_total > 0 THEN p.blocks_total ELSE p.tuples_total END AS total
      FROM pg_stat_progress_create_index p LEFT JOIN pg_class i ON i.oid = p.index_relid
      WHERE p.pid = ${pid}`);
    if (row === undefined) return null;
    return { index: row.index ?? "", phase: row.phase, done: Number(row.done), total: Number(row.total) };
  }

  notValidStatement(shape: StatementShape): string {
    return notValidConstraint(shape.text);
  }

  validateStatement(table: string, constraint: string): string {
    return `ALTER TABLE ${quoteIdentifier(table)} VALIDATE CONSTRAINT ${quoteIdentifier(constraint)}`;
  }

  isLockTimeout(error: unknown): boolean {
    return errorCode(error) === "55P03";
  }

  isConstraintViolation(error: unknown): boolean {
    // foreign_key_violation, check_violation
    return errorCode(error) === "23503" || errorCode(error) === "23514";
  }
}

const dialect = new PgDialect();

/** Runs drizzle `sql` on one connection (drizzle over a reserved connection cannot read its options). */
function sessionOver(connection: postgres.Sql, pid: number): MigrationSession {
  const execute = (query: SQL) => {
    const compiled = dialect.sqlToQuery(query);
    return connection.unsafe(compiled.sql, compiled.params as postgres.ParameterOrJSON<never>[]);
  };
  const executor: Executor = {
    all: async <T extends Row>(query: SQL) => (await execute(query)) as unknown as T[],
    run: async (query: SQL) => (await execute(query)).count,
    exec: async (script: string) => void (await connection.unsafe(script)),
  };
  return {
    ...executor,
    pid,
    async transaction<T>(operation: (tx: Executor) => Promise<T>): Promise<T> {
      await connection.unsafe("BEGIN");
      try {
        const result = await operation(executor);
        await connection.unsafe("COMMIT");
        return result;
      } catch (error) {
        await connection.unsafe("ROLLBACK").catch(() => {});
        throw error;
      }
    },
    async setLockTimeout(ms: number) {
      await connection.unsafe(`SET lock_timeout = ${Math.max(0, Math.floor(ms))}`);
    },
    async atomically(statements: readonly SQL[]) {
      // one simple query: BEGIN … COMMIT in a single message, which the server runs through
      // each ended on a line of its own: a statement may end in a -- comment
      const body = statements.map((statement) => `${inlined(dialect.sqlToQuery(statement)).replace(/;?\s*$/, "")}\n;`).join("\n");
      try {
        await connection.unsafe(`BEGIN;\n${body}\nCOMMIT;`);
      } catch (error) {
        // a failure stops the message where it happened: the transaction is open and aborted
        await connection.unsafe("ROLLBACK").catch(() => {});
        throw error;
      }
    },
  };
}

/**
 * A compiled statement with its parameters written in as literals, for a message of several
 * statements (the simple protocol takes none). Strings as E'' literals (backslashes and quotes
 * doubled: the same whatever standard_conforming_strings says), finite numbers as they are.
 */
function inlined(query: { sql: string; params: unknown[] }): string {
  return query.sql.replace(/\$(\d+)/g, (_match, n: string) => {
    const value = query.params[Number(n) - 1];
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
    if (typeof value === "string") return `E'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
    if (value === null) return "NULL";
    throw new Error(`cannot write ${typeof value} as a literal`);
  });
}

async function tryLock(connection: postgres.Sql, key: number): Promise<boolean> {
  const [row] = await connection.unsafe<Array<{ locked: boolean }>>(`SELECT pg_try_advisory_lock(${key}) AS locked`);
  return row?.locked === true;
}

async function backendPid(connection: postgres.Sql): Promise<number> {
  const [row] = await connection.unsafe<Array<{ pid: number }>>("SELECT pg_backend_pid() AS pid");
  return Number(row?.pid);
}
