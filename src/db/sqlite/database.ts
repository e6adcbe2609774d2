/**
 * The SQLite dialect: better-sqlite3 under drizzle, one connection per process, WAL mode with a
 * busy timeout so that several processes can share one file, foreign keys on.
 */
import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import type { SQL } from "drizzle-orm";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/better-sqlite3";
import { BriefdbError } from "../../errors.js";
import { backgroundWritesOf } from "../background-writes.js";
import { endingWithTransaction } from "../misuse.js";
import type {
  BriefDatabase,
  BulkWriter,
  CloseOptions,
  FailureKind,
  IntegrityCheck,
  StorageSize,
  LedgerStatements,
  OpenOptions,
  Row,
  Transaction,
} from "../database.js";
import { errorCode, rootMessage } from "../driver-errors.js";
import { migrationsFolderOf } from "../../package-root.js";
import type { SqliteTarget } from "../target.js";
import { withBatching } from "../change-batcher.js";
import type { HoldStatements } from "../holds.js";
import { sqliteHolds } from "./holds.js";
import { sqliteLedger } from "./ledger.js";
import { SqliteInspector } from "./inspector.js";
import { bulkWriterOver } from "./bulk-insert.js";
import { SqliteConnection, type SqliteOrm } from "./connection.js";
import * as schema from "./schema.js";
import { sqliteTime } from "./time.js";
import { SqliteSchemaChanges } from "./schema-changes.js";

export type { SqliteOrm } from "./connection.js";
/** A SQLite BriefDatabase whose Drizzle handles are typed (inside a transaction: the same connection). */
export type SqliteBriefDatabase = BriefDatabase<SqliteOrm, SqliteOrm>;

/** How long close() lets the calls already made finish. */
const CLOSE_TIMEOUT_MS = 5000;
/** quick_check stops after this many findings: enough to say what is wrong, not a flood. */
const MAX_INTEGRITY_PROBLEMS = 20;

export class SqliteDatabase implements SqliteBriefDatabase {
  readonly dialect = "sqlite" as const;
  readonly migrationsFolder = migrationsFolderOf("sqlite");
  readonly time = sqliteTime;
  readonly inspector = new SqliteInspector(this);
  readonly schemaChanges = new SqliteSchemaChanges(this);
  readonly client: Database.Database;
  readonly orm: SqliteOrm;
  readonly ownsConnection: boolean;
  closedCleanly: boolean | undefined;
  private readonly connection: SqliteConnection;
  private readonly backgroundWrites = backgroundWritesOf(this);
  private ledgerStatements: ReturnType<typeof sqliteLedger> | undefined;
  private holdStatements: ReturnType<typeof sqliteHolds> | undefined;
  /** Runs queries inside the transaction that holds the lock, bypassing the queue. */
  private readonly inTransaction: Transaction<SqliteOrm>;
  private readonly batching: boolean;
  private batchedStatements: LedgerStatements | undefined;

  /** With `client`, briefdb shares the app's connection and never closes it. */
  constructor(
    readonly target: SqliteTarget,
    options: OpenOptions = {},
    client?: Database.Database,
  ) {
    this.ownsConnection = client === undefined;
    this.batching = options.batch ?? true;
    // 0 is no limit, as on PostgreSQL: the longest busy timeout SQLite takes (about 24 days)
    const lockTimeoutMs = (options.lockTimeoutMs ?? options.busyTimeoutMs ?? 15_000) || 2 ** 31 - 1;
    this.client = client === undefined ? openClient(target, lockTimeoutMs, options) : adoptClient(client, lockTimeoutMs);
    this.orm = drizzle(this.client, { schema });
    this.connection = new SqliteConnection(
      this.client,
      this.orm,
      Number(this.client.pragma("busy_timeout", { simple: true })),
      target.display,
    );
    const self = this;
    this.inTransaction = {
      all: async <T extends Row>(query: SQL) => this.orm.all<T>(query),
      run: async (query: SQL) => this.orm.run(query).changes,
      exec: async (script: string) => void this.client.exec(script),
      drizzle: this.orm,
      get ledger() {
        return self.statements.inTransaction;
      },
      get holds() {
        return self.holdsAndSweep.inTransaction;
      },
    };
  }

  get drizzle(): SqliteOrm {
    return this.orm;
  }

  get ledger(): LedgerStatements {
    if (!this.batching) return this.statements;
    // a change from inside the transaction holding the connection joins that transaction, alone
    this.batchedStatements ??= withBatching(this.statements, this.statements.applyBatch, {
      alone: () => this.connection.insideHeldTransaction(),
      // close() lets changes already called (queued ones too) finish, as unbatched ones do
      track: (outcome) => this.backgroundWrites.track(outcome),
    });
    return this.batchedStatements;
  }

  private get statements(): ReturnType<typeof sqliteLedger> {
    // prepared on first use: after close() there is no connection to prepare them on
    if (this.ledgerStatements === undefined) this.connection.refuseWhenClosed();
    this.ledgerStatements ??= sqliteLedger(this.connection);
    return this.ledgerStatements;
  }

  get holds(): HoldStatements {
    return this.holdsAndSweep;
  }

  private get holdsAndSweep(): ReturnType<typeof sqliteHolds> {
    if (this.holdStatements === undefined) this.connection.refuseWhenClosed();
    this.holdStatements ??= sqliteHolds(this.connection);
    return this.holdStatements;
  }

  all<T extends Row = Row>(query: SQL): Promise<T[]> {
    return this.connection.exclusive(() => this.orm.all<T>(query));
  }

  run(query: SQL): Promise<number> {
    return this.connection.exclusive(() => this.orm.run(query).changes);
  }

  exec(script: string): Promise<void> {
    return this.connection.exclusive(() => void this.client.exec(script));
  }

  transaction<T>(operation: (tx: Transaction<SqliteOrm>) => Promise<T>): Promise<T> {
    // tx refuses once its transaction is over (it would run outside it, or inside a later one)
    const scope = endingWithTransaction(this.inTransaction);
    return this.connection.transaction(() => operation(scope.tx), scope.end);
  }

  withMigrationLock<T>(operation: (tx: Transaction<SqliteOrm>) => Promise<T>): Promise<T> {
    return this.transaction(operation);
  }

  /** Every write transaction here begins IMMEDIATE: it holds the file's one write lock already. */
  async lockTestData(): Promise<void> {}

  bulkWrite<T>(operation: (writer: BulkWriter) => Promise<T>): Promise<T> {
    return this.transaction((tx) => operation(bulkWriterOver(tx, this.client)));
  }

  async tableExists(name: string): Promise<boolean> {
    const rows = await this.all(sql`SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ${name}`);
    return rows.length > 0;
  }

  async serverVersion(): Promise<string> {
    const [row] = await this.all<{ version: string }>(sql`SELECT sqlite_version() AS version`);
    return `SQLite ${row?.version ?? "unknown"}`;
  }

  async checkIntegrity(): Promise<IntegrityCheck> {
    const method = "pragma quick_check";
    const hint = "the file is damaged: restore it from a backup (sqlite3's .recover can salvage what is left)";
    let findings: string[];
    try {
      const rows = await this.all<{ quick_check: string }>(sql.raw(`PRAGMA quick_check(${MAX_INTEGRITY_PROBLEMS})`));
      findings = rows.map((row) => row.quick_check);
    } catch (error) {
      // a page the check needs cannot even be read: that is its finding
      if (!/^SQLITE_(CORRUPT|NOTADB)/.test(errorCode(error) ?? "")) throw error;
      findings = [rootMessage(error)];
    }
    const problems = findings.length === 1 && findings[0] === "ok" ? [] : findings;
    return { method, problems, ...(problems.length > 0 ? { hint } : {}) };
  }

  async storage(): Promise<StorageSize> {
    const [row] = await this.all<{ pages: number; free: number; size: number }>(
      sql`SELECT (SELECT page_count FROM pragma_page_count()) AS pages, (SELECT freelist_count FROM pragma_freelist_count()) AS free, (SELECT page_size FROM pragma_page_size()) AS size`,
    );
    return { bytes: (row?.pages ?? 0) * (row?.size ?? 0), freeBytes: (row?.free ?? 0) * (row?.size ?? 0) };
  }

  async compact(): Promise<void> {
    await this.exec("VACUUM");
    await this.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  async explain(query: SQL): Promise<string[]> {
    const rows = await this.all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${query}`);
    return rows.map((row) => row.detail);
  }

  classify(error: unknown): FailureKind {
    const code = errorCode(error) ?? "";
    const message = rootMessage(error);
    if (code === "SQLITE_CANTOPEN") return "unreachable";
    if (code.startsWith("SQLITE_CONSTRAINT_UNIQUE") || code === "SQLITE_CONSTRAINT_PRIMARYKEY") return "unique_violation";
    if (code === "SQLITE_CONSTRAINT_CHECK") return "check_violation";
    if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") return "foreign_key_violation";
    if (code.startsWith("SQLITE_BUSY")) return "lock_timeout";
    if (/^no such (table|column)/.test(message)) return "undefined_table";
    return "other";
  }

  async close(options: CloseOptions = {}): Promise<void> {
    // the calls already made finish first, but not for ever: a transaction's operation may never resolve
    const deadline = Date.now() + (options.timeoutMs ?? CLOSE_TIMEOUT_MS);
    await this.backgroundWrites.settle(deadline);
    await this.connection.close(this.ownsConnection, deadline);
    // a file in this process: once closed, nothing of it waits on anyone
    this.closedCleanly = true;
  }
}

/**
 * The app's own connection: its journal mode and durability stay the app's choice; foreign keys
 * go on (the ledger's brief check relies on them) and a busy timeout is set when it has none.
 */
const DAMAGED_FILE_HINT =
  "the file is not a SQLite database, or its header is damaged: check --db, or restore it from a backup (sqlite3's .recover can salvage what is left)";

function adoptClient(client: Database.Database, busyTimeoutMs: number): Database.Database {
  if (!client.open) throw new BriefdbError("USAGE", "the better-sqlite3 connection handed to briefdb is closed");
  client.pragma("foreign_keys = ON");
  if (client.pragma("busy_timeout", { simple: true }) === 0) client.pragma(`busy_timeout = ${busyTimeoutMs}`);
  return client;
}

function openClient(target: SqliteTarget, busyTimeoutMs: number, options: OpenOptions): Database.Database {
  let client: Database.Database;
  try {
    const standIn = options.create === false && options.missingIsEmpty === true && !existsSync(target.path);
    client = new Database(standIn ? ":memory:" : target.path, { fileMustExist: options.create === false, timeout: busyTimeoutMs });
  } catch (error) {
    throw new BriefdbError(
      "DB_UNREACHABLE",
      `cannot open SQLite database ${target.display}: ${rootMessage(error)}`,
      options.create === false ? "run `briefdb migrate` to create it, or check --db" : "check that the folder exists and is writable",
      { cause: error },
    );
  }
  try {
    if (target.path !== ":memory:") switchToWal(client, busyTimeoutMs);
    // FULL: a committed ledger row survives power loss, not only a crash of the process.
    client.pragma("synchronous = FULL");
    client.pragma("foreign_keys = ON");
    client.pragma(`busy_timeout = ${busyTimeoutMs}`);
  } catch (error) {
    client.close();
    // the file is there and opened: what it holds is not a (sound) SQLite database
    const damaged = /^SQLITE_(CORRUPT|NOTADB)/.test(errorCode(error) ?? "");
    throw new BriefdbError(
      damaged ? "DB_ERROR" : "DB_UNREACHABLE",
      `cannot use ${target.display}: ${rootMessage(error)}`,
      damaged ? DAMAGED_FILE_HINT : undefined,
      { cause: error },
    );
  }
  return client;
}

/**
 * Switching a fresh file to WAL writes its header under a read transaction upgraded to a write,
 * and SQLite gives up on that upgrade at once (SQLITE_BUSY, "database is locked") instead of
 * calling the busy handler. So when two processes open a new file together (two `migrate` runs),
 * the one that loses the race would fail although the busy timeout allows waiting: it retries
 * here, within the same timeout. Once the file is in WAL mode the switch writes nothing.
 */
function switchToWal(client: Database.Database, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
    try {
      client.pragma("journal_mode = WAL");
      return;
    } catch (error) {
      if (!(errorCode(error) ?? "").startsWith("SQLITE_BUSY") || Date.now() >= deadline) throw error;
      // The constructor is synchronous, like better-sqlite3's own busy handler: sleep the thread.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause * (0.5 + Math.random()));
    }
  }
}
