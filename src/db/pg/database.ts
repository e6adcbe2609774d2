/**
 * The PostgreSQL dialect: postgres.js under drizzle, a pool of connections with a connect timeout
 * that covers the whole start-up (so a server that never answers fails in time), and prepared
 * statements that can be turned off for PgBouncer in transaction mode.
 */
import type { SQL } from "drizzle-orm";
import { sql } from "drizzle-orm";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import type {
  BriefDatabase,
  BulkWriter,
  Executor,
  FailureKind,
  IntegrityCheck,
  LedgerStatements,
  OpenOptions,
  PoolUse,
  Row,
  Transaction,
  TransactionOptions,
} from "../database.js";
import { BackgroundWrites, backgroundWritesOf } from "../background-writes.js";
import { errorChain, errorCode } from "../driver-errors.js";
import { migrationsFolderOf } from "../../package-root.js";
import { backOff, ROLLED_BACK_TRANSACTION, sleep } from "../../retry.js";
import type { PgTarget, SslMode } from "../target.js";
import { withBatching } from "../change-batcher.js";
import type { HoldStatements } from "../holds.js";
import { withHoldBatching } from "../hold-batching.js";
import { pgHolds } from "./holds.js";
import { pgApplyHoldBatch } from "./hold-batch.js";
import { pgLedger } from "./ledger.js";
import { pgApplyLedgerBatch } from "./ledger-batch.js";
import type { PgBatchConnection } from "./batch-rules.js";
import { PgInspector } from "./inspector.js";
import { pgBulkWrite } from "./bulk-insert.js";
import { watchTransactions } from "./dead-connection.js";
import * as schema from "./schema.js";
import { pgTime } from "./time.js";
import { OWN_SCHEMA, PgSchemaChanges, pinOwnSchema, type SessionConnection } from "./schema-changes.js";

export type PgOrm = PostgresJsDatabase<typeof schema>;
/** Drizzle inside one of briefdb's PostgreSQL transactions. */
export type PgTx = Parameters<Parameters<PgOrm["transaction"]>[0]>[0];
/** A PostgreSQL BriefDatabase whose Drizzle handles are typed. */
export type PgBriefDatabase = BriefDatabase<PgOrm, PgTx>;

/** Key of the advisory lock that migrators take turns on ("briefdb" in ASCII). */
const MIGRATION_LOCK_KEY = 0x62726965666462;
/** How often a migrator waiting for another one tries the migration lock again. */
const MIGRATION_LOCK_POLL_MS = 250;
/** Key of the advisory lock that seeds and clears take turns on ("briefds" in ASCII). */
const TEST_DATA_LOCK_KEY = 0x62726965666473;
/** No connection could be made: nothing was sent. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOENT",
  "CONNECT_TIMEOUT",
  "CONNECTION_ENDED",
  "57P03",
]);
/**
 * A connection in use broke (reset, closed, the server shutting down or crashing): what was sent
 * on it may have run. SQLSTATE 57P01 admin_shutdown, 57P02 crash_shutdown, class 08 connection.
 */
const CONNECTION_LOST_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P02",
  "08000",
  "08003",
  "08006",
]);
const AUTH_CODES = new Set(["28P01", "28000"]);
const DEFAULT_LOCK_TIMEOUT_MS = 15_000;
/** How long close() lets batched changes already called, then the statements in flight, finish. */
const CLOSE_TIMEOUT_SECONDS = 5;
/**
 * Enough for fifty transactions contending for one row under SERIALIZABLE (one of each round of
 * contenders commits; the rest are retried after a jittered pause that spreads them out).
 */
const DEFAULT_RETRIES = 30;

export class PgDatabase implements PgBriefDatabase {
  readonly dialect = "postgresql" as const;
  readonly migrationsFolder = migrationsFolderOf("pg");
  readonly time = pgTime;
  readonly inspector = new PgInspector(this);
  readonly schemaChanges: PgSchemaChanges;
  readonly client: postgres.Sql;
  readonly orm: PgOrm;
  readonly ownsConnection: boolean;
  private ledgerStatements: LedgerStatements | undefined;
  private holdStatements: HoldStatements | undefined;
  private readonly prepare: boolean;
  private readonly batching: boolean;
  private readonly backgroundWrites = backgroundWritesOf(this);
  /** Batched token changes called and not yet answered (queued in the batcher, or in flight). */
  private readonly batchedChanges = new BackgroundWrites();

  /** With `client`, briefdb uses the app's own pool and never ends it. */
  constructor(
    readonly target: PgTarget,
    options: OpenOptions = {},
    client?: postgres.Sql,
  ) {
    this.ownsConnection = client === undefined;
    this.batching = options.batch ?? true;
    this.client = watchTransactions(client ?? connect(target, options), (error) => this.lostConnection(error));
    this.orm = drizzle(this.client, { schema });
    this.prepare = client === undefined ? (options.prepare ?? true) : client.options.prepare;
    this.schemaChanges = new PgSchemaChanges(this, (onClose) => this.sessionConnection(onClose), MIGRATION_LOCK_KEY, (error) => this.lostConnection(error));
  }

  /** A failure after which nothing more may be sent on its connection (see ./dead-connection.ts). */
  private lostConnection(error: unknown): boolean {
    const kind = this.classify(error);
    return kind === "connection_lost" || kind === "unreachable" || errorChain(error).some((link) => link.severity === "FATAL");
  }

  /**
   * One connection for a migration session: a pool of one beside the pool, made from the pool's own
   * options (the app's host, credentials and TLS when it is the app's pool), whose close `onClose`
   * hears at once. Never one of the pool's reserve()d: postgres.js writes to a reserved connection
   * whose backend died from a timer that throws where nothing can catch it (./dead-connection.ts).
   */
  private async sessionConnection(onClose: () => void): Promise<SessionConnection> {
    const single = postgres({ ...this.client.options, max: 1, onclose: onClose } as unknown as postgres.Options<Record<string, never>>);
    return { sql: single, done: () => single.end({ timeout: 5 }) };
  }

  get drizzle(): PgOrm {
    return this.orm;
  }

  get ledger(): LedgerStatements {
    if (this.ledgerStatements === undefined) {
      const statements = pgLedger(this.client, this.prepare);
      this.ledgerStatements = this.batching
        ? withBatching(
            statements,
            pgApplyLedgerBatch(this.batchConnection()),
            {
              slots: batchSlots(this.client),
              // close() lets changes already called (queued or in flight) finish, as unbatched
              // ones do: postgres.js's end() waits only for the queries it has been given
              track: (outcome) => this.batchedChanges.track(outcome),
            },
          )
        : statements;
    }
    return this.ledgerStatements;
  }

  get holds(): HoldStatements {
    if (this.holdStatements === undefined) {
      const statements = pgHolds(this.client, this.prepare);
      this.holdStatements = this.batching
        ? withHoldBatching(statements, pgApplyHoldBatch(this.batchConnection()), {
            slots: batchSlots(this.client),
            // close() waits for them, as for batched deducts
            track: (outcome) => this.batchedChanges.track(outcome),
          })
        : statements;
    }
    return this.holdStatements;
  }

  /** What both batchers are built from. */
  private batchConnection(): PgBatchConnection {
    return { client: this.client, prepare: this.prepare, classify: (error) => this.classify(error) };
  }

  async all<T extends Row = Row>(query: SQL): Promise<T[]> {
    return (await this.orm.execute(query)) as unknown as T[];
  }

  async run(query: SQL): Promise<number> {
    return (await this.orm.execute(query)).count;
  }

  async exec(script: string): Promise<void> {
    await this.client.unsafe(script);
  }

  async transaction<T>(operation: (tx: Transaction<PgTx>) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const retries = options.retries ?? DEFAULT_RETRIES;
    const config = { isolationLevel: options.isolation ?? "serializable" } as const;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.orm.transaction((tx) => operation(transactionOver(tx)), config);
      } catch (error) {
        if (attempt >= retries || this.classify(error) !== "retryable") throw error;
        await backOff(attempt, ROLLED_BACK_TRANSACTION);
      }
    }
  }

  async poolUse(): Promise<PoolUse> {
    const rows = await this.all<{ state: string | null; n: number | string }>(sql`
      SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = current_setting('application_name')
      GROUP BY 1`);
    const connections = Object.fromEntries(rows.map((row) => [row.state ?? "unknown", Number(row.n)]));
    return { max: this.client.options.max, connections };
  }

  /**
   * Waits for the migration lock by trying it in short transactions, never in one open statement:
   * an online migrator's CREATE INDEX CONCURRENTLY waits for every older snapshot to end, and a
   * migrator waiting for the lock inside its statement holds one — a deadlock that failed one of them.
   */
  async withMigrationLock<T>(operation: (tx: Executor) => Promise<T>): Promise<T> {
    for (;;) {
      const outcome = await this.transaction(
        async (tx) => {
          const [row] = await tx.all<{ locked: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${MIGRATION_LOCK_KEY}) AS locked`);
          if (row?.locked !== true) return null;
          await tx.exec(pinOwnSchema("transaction"));
          return { value: await operation(tx) };
        },
        // read committed: once the lock is ours, each statement sees what the previous holder committed
        { retries: 0, isolation: "read committed" },
      );
      if (outcome !== null) return outcome.value;
      await sleep(MIGRATION_LOCK_POLL_MS);
    }
  }

  async lockTestData(tx: Executor): Promise<void> {
    // Without it, two seeds both found no earlier seed, both inserted, and the loser failed on a
    // foreign key. READ COMMITTED: once the lock is ours, each statement sees the holder before's rows.
    await tx.exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    await takeTurn(tx, TEST_DATA_LOCK_KEY);
  }

  bulkWrite<T>(operation: (writer: BulkWriter) => Promise<T>): Promise<T> {
    return pgBulkWrite(this.client, operation);
  }

  async tableExists(name: string): Promise<boolean> {
    const [row] = await this.all<{ found: boolean }>(sql`SELECT to_regclass(format('%I.%I', ${OWN_SCHEMA}::text, ${name}::text)) IS NOT NULL AS found`);
    return row?.found === true;
  }

  async serverVersion(): Promise<string> {
    const [row] = await this.all<{ version: string }>(sql`SELECT current_setting('server_version') AS version`);
    return `PostgreSQL ${row?.version ?? "unknown"}`;
  }

  async checkIntegrity(): Promise<IntegrityCheck> {
    const [row] = await this.all<{ checksums: string; failures: number | string | null; last: Date | string | null }>(
      sql`SELECT current_setting('data_checksums') AS checksums, checksum_failures AS failures, checksum_last_failure AS last
          FROM pg_stat_database WHERE datname = current_database()`,
    );
    if (row?.checksums !== "on") {
      return {
        method: null,
        problems: [],
        note: "data checksums are off on this server, so it cannot tell a damaged page cheaply (turn them on with pg_checksums --enable, or initdb --data-checksums)",
      };
    }
    const failures = Number(row.failures ?? 0);
    const method = "data checksum failures (pg_stat_database)";
    if (failures === 0) return { method, problems: [] };
    const last = row.last === null ? "" : `, the last at ${new Date(row.last).toISOString()}`;
    return {
      method,
      problems: [`${failures} data checksum failure(s) in database ${this.target.database}${last}`],
      hint: "a page on disk is damaged: the server log names it; restore from a backup (or a replica)",
    };
  }

  async explain(query: SQL): Promise<string[]> {
    const rows = await this.all<{ "QUERY PLAN": string }>(sql`EXPLAIN ${query}`);
    return rows.map((row) => row["QUERY PLAN"]);
  }

  classify(error: unknown): FailureKind {
    const code = errorCode(error) ?? "";
    if (code === "3D000") return "database_missing";
    if (UNREACHABLE_CODES.has(code)) return "unreachable";
    if (CONNECTION_LOST_CODES.has(code)) return "connection_lost";
    if (AUTH_CODES.has(code)) return "auth_failed";
    if (code === "55P03") return "lock_timeout";
    if (code === "57014") return "cancelled";
    if (code === "23505") return "unique_violation";
    if (code === "23514") return "check_violation";
    if (code === "23503") return "foreign_key_violation";
    if (code === "42P01" || code === "42703") return "undefined_table";
    if (code === "40001" || code === "40P01") return "retryable";
    return "other";
  }

  async close(): Promise<void> {
    await this.backgroundWrites.settle();
    // changes already called go first, as unbatched ones would, but not for ever (a batch may
    // wait on a lock that never frees: lockTimeoutMs 0); then what was sent and is still
    // running gets the pool's end timeout, and what was never sent is refused, nothing changed
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([
      this.batchedChanges.settle(),
      new Promise<void>((resolve) => (waited = setTimeout(resolve, CLOSE_TIMEOUT_SECONDS * 1000))),
    ]);
    clearTimeout(waited);
    if (this.ownsConnection) await this.client.end({ timeout: CLOSE_TIMEOUT_SECONDS });
  }
}

function connect(target: PgTarget, options: OpenOptions): postgres.Sql {
  return postgres({
    // one-element lists, so that postgres.js does not split "::1" at its colons as it would
    // "host:port" (it takes lists at run time; its types only declare the single form)
    host: [target.socketDir ?? target.host] as unknown as string,
    port: [target.port] as unknown as number,
    path: target.socketDir === undefined ? undefined : `${target.socketDir}/.s.PGSQL.${target.port}`,
    database: target.database,
    user: target.user,
    password: target.password,
    ssl: sslOption(target.sslmode),
    max: options.poolSize ?? 10,
    connect_timeout: (options.timeoutMs ?? 5000) / 1000,
    idle_timeout: 30,
    prepare: options.prepare ?? true,
    fetch_types: false,
    onnotice: () => {},
    // a startup parameter, so every connection has it from its first statement; 0 is not sent
    // (behind PgBouncer, list lock_timeout in its ignore_startup_parameters, or pass 0)
    connection: { application_name: "briefdb", lock_timeout: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS },
  });
}

function transactionOver(tx: PgTx): Transaction<PgTx> {
  return {
    all: async <T extends Row>(query: SQL) => (await tx.execute(query)) as unknown as T[],
    run: async (query: SQL) => (await tx.execute(query)).count,
    exec: async (script: string) => void (await tx.execute(sql.raw(script))),
    drizzle: tx,
    ledger: pgLedger(transactionSqlOf(tx), false),
    holds: pgHolds(transactionSqlOf(tx), false),
  };
}

/**
 * The postgres.js connection a drizzle transaction runs on, so the ledger's one-statement deduct
 * joins the transaction. drizzle keeps it on its (internal) session; checked, not assumed.
 */
function transactionSqlOf(tx: PgTx): postgres.Sql {
  const client = (tx as unknown as { session?: { client?: postgres.Sql } }).session?.client;
  if (typeof client?.unsafe !== "function") throw new Error("briefdb: this drizzle-orm version hides its transaction's connection");
  return client;
}

/**
 * Waits for an advisory lock as long as its holder works (a migration or seed before this one is
 * not a stuck lock), then puts the session's lock_timeout back for the statements that follow.
 */
async function takeTurn(tx: Executor, key: number): Promise<void> {
  await tx.exec("SET LOCAL lock_timeout = 0");
  await tx.all(sql`SELECT pg_advisory_xact_lock(${key})`);
  await tx.exec("SET LOCAL lock_timeout TO DEFAULT");
}

function sslOption(mode: SslMode): boolean | "allow" | "prefer" | "require" | "verify-full" {
  if (mode === "disable") return false;
  if (mode === "verify-ca") return "verify-full";
  return mode;
}

/** Batches in flight at once, per batcher (deducts; holds): half the pool, so that other work finds connections. */
function batchSlots(client: postgres.Sql): number {
  return Math.max(1, Math.floor(client.options.max / 2));
}
