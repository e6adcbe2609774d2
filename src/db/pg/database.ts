/**
 * The PostgreSQL dialect: postgres.js under drizzle, a pool of connections with a connect timeout
 * that covers the whole start-up (so a server that never answers fails in time), and prepared
 * statements that can be turned off; a transaction pooler in front of the server is found and
 * worked with (./pooler.ts).
 */
import type { SQL } from "drizzle-orm";
import { sql } from "drizzle-orm";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import type {
  BriefDatabase,
  BulkWriter,
  CloseOptions,
  Executor,
  FailureKind,
  IntegrityCheck,
  StorageSize,
  LedgerStatements,
  OpenOptions,
  PoolUse,
  Row,
  Transaction,
  TransactionOptions,
} from "../database.js";
import { BackgroundWrites, backgroundWritesOf } from "../background-writes.js";
import { BriefdbError } from "../../errors.js";
import { errorChain, errorCode, isTlsRefused } from "../driver-errors.js";
import { closedUnderTransaction, endingWithTransaction } from "../misuse.js";
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
import { PoolGate, type WatchedPoolOptions } from "./pool-gate.js";
import { PoolerDetection, poolerAware } from "./pooler.js";
import { inPooledTransaction } from "./pooled-session.js";
import { ServerFinder } from "./server-finder.js";

export type PgOrm = PostgresJsDatabase<typeof schema>;
/** Drizzle inside one of briefdb's PostgreSQL transactions. */
export type PgTx = Parameters<Parameters<PgOrm["transaction"]>[0]>[0];
/** A PostgreSQL BriefDatabase whose Drizzle handles are typed. */
export type PgBriefDatabase = BriefDatabase<PgOrm, PgTx>;

/** briefdb's tables, whose space `storage` counts and `compact` gives back. */
const APP_TABLES = ["users", "models", "briefs", "reviews", "token_transactions", "token_holds", "query_log"] as const;
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
 * A connection in use broke (reset, closed, the server shutting down or crashing, or ending the
 * session): what was sent on it may have run. SQLSTATE 57P01 admin_shutdown, 57P02
 * crash_shutdown, 57P04 database_dropped, class 08 connection — 08P01 too, which is how PgBouncer
 * ends a client whose server connection died under its statement ("server conn crashed?"), and
 * 08007 transaction_resolution_unknown; and the server's FATAL for a
 * session idle too long, in a transaction (25P03) or not (57P05) — which postgres.js 3.4 also
 * hands to the first call on the connection made again, a call never sent (its start-up fails
 * with the old error): a lost connection, not a failure of that call's own.
 */
const CONNECTION_LOST_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P02",
  "57P04",
  "57P05",
  "25P03",
  "08000",
  "08003",
  "08006",
  "08007",
  // protocol_violation, or a server that answers but not as PostgreSQL (../driver-errors.ts): what
  // was sent may have run, as far as briefdb can tell
  "08P01",
]);
const AUTH_CODES = new Set(["28P01", "28000"]);
const DEFAULT_LOCK_TIMEOUT_MS = 15_000;
/** How long close() lets the calls already made finish (writes in the background, batched changes, statements in flight). */
const CLOSE_TIMEOUT_MS = 5000;
/** How long close() lets the statements it cancelled stop before it ends the connections. */
const STOP_WAIT_MS = 2000;
/** How long close() waits for the server to close the connections it said goodbye on. */
const END_WAIT_MS = 1000;
/** How long a call waits for a pooled connection that every transaction holds, by default. */
const DEFAULT_POOL_TIMEOUT_MS = 30_000;
/** briefdb's own refusals, made before anything was sent: read as "unreachable" (nothing sent, the whole batch's). */
const REFUSED_BEFORE_SENDING = new Set(["CLOSED", "POOL_TIMEOUT", "POOL_DEADLOCK"]);
/**
 * Enough for fifty transactions contending for one row under SERIALIZABLE (one of each round of
 * contenders commits; the rest are retried after a jittered pause that spreads them out).
 */
const DEFAULT_RETRIES = 30;

export class PgDatabase implements PgBriefDatabase {
  readonly dialect = "postgresql" as const;
  readonly migrationsFolder = migrationsFolderOf("pg");
  readonly time = pgTime;
  // the finder is set in the constructor, after this field: asked when health asks
  readonly inspector = new PgInspector(this, () => (this.finder !== undefined && this.finder.listsSeveral() ? this.finder.primaries() : undefined));
  readonly schemaChanges: PgSchemaChanges;
  /** The pool behind the gate (pool-gate.ts): every query and transaction of briefdb's goes through it. */
  readonly client: postgres.Sql;
  readonly orm: PgOrm;
  private readonly raw: postgres.Sql;
  private readonly gate: PoolGate;
  readonly ownsConnection: boolean;
  closedCleanly: boolean | undefined;
  /** Our own pool only: whether it goes through a transaction pooler (the app's client is the app's to configure). */
  private readonly pooler: PoolerDetection | undefined;
  /** The pool as every statement of briefdb's and drizzle's goes on it: `client`, waiting for the pooler detection. */
  private readonly sql: postgres.Sql;
  private ledgerStatements: LedgerStatements | undefined;
  private holdStatements: HoldStatements | undefined;
  private readonly prepare: boolean;
  private readonly batching: boolean;
  private readonly backgroundWrites = backgroundWritesOf(this);
  /** Batched token changes called and not yet answered (queued in the batcher, or in flight). */
  private readonly batchedChanges = new BackgroundWrites();
  private readonly batchClient: postgres.Sql;
  /** Our own pool over a host list (or a role asked for): which server its connections go to. */
  private readonly finder: ServerFinder | undefined;

  /** With `client`, briefdb uses the app's own pool and never ends it. */
  constructor(
    readonly target: PgTarget,
    options: OpenOptions = {},
    client?: postgres.Sql,
  ) {
    this.ownsConnection = client === undefined;
    this.batching = options.batch ?? true;
    const own = client === undefined ? connect(target, options) : undefined;
    this.finder = own?.finder;
    this.raw = watchTransactions(client ?? (own as { client: postgres.Sql }).client, (error) => this.lostConnection(error));
    this.gate = new PoolGate({
      size: this.raw.options.max,
      waitMs: options.poolTimeoutMs ?? DEFAULT_POOL_TIMEOUT_MS,
      display: target.display,
    });
    // our own pool: a statement whose connection closed unanswered fails at once (pool-gate.ts)
    if (this.ownsConnection) this.gate.watchConnections(this.raw.options as unknown as WatchedPoolOptions);
    this.client = this.gate.sql(this.raw, true);
    this.pooler = client === undefined ? new PoolerDetection(this.client, lockTimeoutOf(options)) : undefined;
    // through a transaction pooler, each statement and transaction carries its lock bound (pooler.ts)
    this.sql = this.pooler === undefined ? this.client : poolerAware(this.client, this.pooler);
    this.orm = drizzle(this.sql, { schema });
    this.prepare = client === undefined ? (options.prepare ?? true) : client.options.prepare;
    // a batch is not its caller's transaction, even when a caller inside one set it off
    const batchClient = this.gate.sql(this.raw, false);
    this.batchClient = this.pooler === undefined ? batchClient : poolerAware(batchClient, this.pooler);
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
    if (this.pooler !== undefined) {
      await this.pooler.ready();
      // no session to be had: one transaction that holds the migration lock stands in for it
      if (this.pooler.pooled) return { inTransaction: (operation) => inPooledTransaction((body) => this.withMigrationLock(body), operation) };
    }
    // a pool of one of its own, made from the pool's options: its close ends the watch at once
    const single = postgres({ ...this.raw.options, max: 1, onclose: onClose } as unknown as postgres.Options<Record<string, never>>);
    // a connection that is gone has nothing left to finish: ended at once (waiting, postgres.js
    // held the caller for its whole timeout after the server went away)
    return { sql: single, done: (lost) => single.end({ timeout: lost ? 0 : 5 }) };
  }

  get drizzle(): PgOrm {
    return this.orm;
  }

  get ledger(): LedgerStatements {
    if (this.ledgerStatements === undefined) {
      const statements = pgLedger(this.sql, this.prepare);
      this.ledgerStatements = this.batching
        ? this.refusingFirst(withBatching(
            statements,
            pgApplyLedgerBatch(this.batchConnection()),
            {
              slots: batchSlots(this.client),
              // close() lets changes already called (queued or in flight) finish, as unbatched
              // ones do: postgres.js's end() waits only for the queries it has been given
              track: (outcome) => this.batchedChanges.track(outcome),
            },
          ))
        : statements;
    }
    return this.ledgerStatements;
  }

  get holds(): HoldStatements {
    if (this.holdStatements === undefined) {
      const statements = pgHolds(this.sql, this.prepare);
      this.holdStatements = this.batching
        ? this.refusingHoldsFirst(
            withHoldBatching(statements, pgApplyHoldBatch(this.batchConnection()), {
              slots: batchSlots(this.client),
              // close() waits for them, as for batched deducts
              track: (outcome) => this.batchedChanges.track(outcome),
            }),
          )
        : statements;
    }
    return this.holdStatements;
  }

  /** What both batchers are built from. */
  private batchConnection(): PgBatchConnection {
    return { client: this.batchClient, prepare: this.prepare, classify: (error) => this.classify(error) };
  }

  /**
   * A batched change is refused before it joins a batch when the call could never run: after
   * close(), or from inside transactions that hold every connection (the batch would wait for them).
   */
  private refusingFirst(statements: LedgerStatements): LedgerStatements {
    const submit = statements.submit;
    if (submit === undefined) return statements;
    return { ...statements, submit: async (change) => (this.gate.check(), submit(change)) };
  }

  private refusingHoldsFirst(statements: HoldStatements): HoldStatements {
    const { submitPlace, submitCapture } = statements;
    return {
      ...statements,
      ...(submitPlace === undefined ? {} : { submitPlace: async (hold) => (this.gate.check(), submitPlace(hold)) }),
      ...(submitCapture === undefined
        ? {}
        : { submitCapture: (holdId, amount, ledgerId) => (this.gate.check(), submitCapture(holdId, amount, ledgerId)) }),
    };
  }

  async all<T extends Row = Row>(query: SQL): Promise<T[]> {
    return (await this.orm.execute(query).catch(ownRefusalFirst)) as unknown as T[];
  }

  async run(query: SQL): Promise<number> {
    return (await this.orm.execute(query).catch(ownRefusalFirst)).count;
  }

  async exec(script: string): Promise<void> {
    await this.sql.unsafe(script);
  }

  async transaction<T>(operation: (tx: Transaction<PgTx>) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const retries = options.retries ?? DEFAULT_RETRIES;
    const config = { isolationLevel: options.isolation ?? "serializable" } as const;
    for (let attempt = 0; ; attempt++) {
      // tx refuses once its transaction is over; close() may end the transaction before the operation
      let scope: ReturnType<typeof endingWithTransaction<PgTx>> | undefined;
      let running = false;
      try {
        return await this.orm.transaction(async (tx) => {
          scope = endingWithTransaction(transactionOver(tx));
          running = true;
          try {
            return await operation(scope.tx);
          } finally {
            running = false;
          }
        }, config);
      } catch (error) {
        // COMMIT is sent only once the operation is done: a connection close() ended before was rolled back
        if (running && this.gate.isClosed && this.classify(error) === "connection_lost") throw closedUnderTransaction(this.target.display);
        if (attempt >= retries || this.classify(error) !== "retryable") throw error;
        await backOff(attempt, ROLLED_BACK_TRANSACTION);
      } finally {
        scope?.end();
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
    await takeTurn(tx, TEST_DATA_LOCK_KEY, this.pooler?.restoreStatement ?? "SET LOCAL lock_timeout TO DEFAULT");
  }

  bulkWrite<T>(operation: (writer: BulkWriter) => Promise<T>): Promise<T> {
    return pgBulkWrite(this.sql, operation);
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

  async storage(): Promise<StorageSize> {
    const [row] = await this.all<{ bytes: string | null }>(
      sql`SELECT sum(pg_total_relation_size(c.oid))::text AS bytes FROM pg_class c WHERE c.oid = ANY (${sql.raw(`ARRAY[${APP_TABLES.map((name) => `to_regclass('${name}')`).join(", ")}]`)}::oid[])`,
    );
    return { bytes: Number(row?.bytes ?? 0), freeBytes: undefined };
  }

  async compact(): Promise<void> {
    // each table apart: VACUUM refuses a transaction, and a missing table is not a failure here
    for (const name of APP_TABLES) {
      if (await this.tableExists(name)) await this.exec(`VACUUM ${name}`);
    }
  }

  async explain(query: SQL): Promise<string[]> {
    const rows = await this.all<{ "QUERY PLAN": string }>(sql`EXPLAIN ${query}`);
    return rows.map((row) => row["QUERY PLAN"]);
  }

  classify(error: unknown): FailureKind {
    const kind = this.kindOf(error);
    // the server found for the URL's host list lost a connection or took no write: ask the list
    // again for the next connection (a failover moved the primary); its sockets' close says so too,
    // but TLS takes them over
    if (kind === "connection_lost" || kind === "read_only") this.finder?.forget();
    return kind;
  }

  private kindOf(error: unknown): FailureKind {
    if (errorChain(error).some((link) => link.name === "BriefdbError" && REFUSED_BEFORE_SENDING.has(String(link.code)))) {
      return "unreachable";
    }
    const code = errorCode(error) ?? "";
    if (code === "3D000") return "database_missing";
    if (UNREACHABLE_CODES.has(code) || isTlsRefused(error)) return "unreachable";
    if (CONNECTION_LOST_CODES.has(code)) return "connection_lost";
    if (AUTH_CODES.has(code)) return "auth_failed";
    if (code === "55P03") return "lock_timeout";
    if (code === "25006") return "read_only";
    if (code === "57014") return "cancelled";
    if (code === "23505") return "unique_violation";
    if (code === "23514") return "check_violation";
    if (code === "23503") return "foreign_key_violation";
    if (code === "42P01" || code === "42703") return "undefined_table";
    if (code === "40001" || code === "40P01") return "retryable";
    return "other";
  }

  async close(options: CloseOptions = {}): Promise<void> {
    // the calls already made finish first (background writes, batched changes, then every query
    // and transaction of briefdb's), but not for ever: a statement may wait on a lock that never
    // frees, an operation may never resolve. The gate knows what still runs: postgres.js's own
    // end() waited its whole timeout after a connection fault, with nothing running.
    const deadline = Date.now() + (options.timeoutMs ?? CLOSE_TIMEOUT_MS);
    await this.backgroundWrites.settle(deadline);
    await this.batchedChanges.settle(deadline);
    await settledBy(this.gate.idle(), deadline);
    // then later calls are refused (CLOSED); what still runs is cancelled on the server (a
    // statement waiting for a lock would keep its session, and the process, until its lock
    // timeout) and given a moment to stop; an open transaction is rolled back with its
    // connection (its caller is told: CLOSED)
    this.gate.close();
    this.finder?.stop();
    const stopped = await settledBy(this.gate.statementsDone(), Date.now() + STOP_WAIT_MS);
    if (!this.ownsConnection) {
      this.closedCleanly = stopped;
      return;
    }
    // each connection says goodbye and waits for the server to close it; a server frozen mid-TCP
    // never does, and end() resolves anyway (it destroys), leaving its sockets to hold the process
    const closed = await settledBy(connectionsClosed(this.raw), Date.now() + END_WAIT_MS);
    await this.raw.end({ timeout: 0 });
    // end() destroyed every connection and answered what was left on them. Once no TCP socket is
    // left, nothing is open whatever the waits said (TCP only: a Unix socket is not told from
    // stdio): a connection still waiting to reconnect to a server that is gone holds no socket,
    // and neither does one postgres.js left a statement on after its socket was reset — it never
    // answers a statement sent between the socket's 'error' and its 'close' (3.4.9), which under
    // load the dashboard's sampler did, and serve said it could not close the connection (the
    // gate fails such a statement when the connection closes, on our own pool; not on an app's)
    this.closedCleanly = (stopped && closed) || (this.target.socketDir === undefined && !(await tcpSocketsOpen()));
  }
}

/** Whether any TCP socket keeps this process alive, once those just destroyed are gone: an app's own count too. */
async function tcpSocketsOpen(): Promise<boolean> {
  await new Promise((resolve) => setImmediate(resolve));
  return typeof process.getActiveResourcesInfo !== "function" || process.getActiveResourcesInfo().includes("TCPSocketWrap");
}

/**
 * postgres.js's close(): every connection says goodbye, resolved once the server closed each (its
 * end() destroys them at its timeout, which cannot tell). Not in its types: checked, not assumed.
 */
function connectionsClosed(raw: postgres.Sql): Promise<void> {
  const close = (raw as unknown as { close?: () => Promise<void> }).close;
  if (typeof close !== "function") throw new Error("briefdb: this postgres.js version has no close()");
  return close.call(raw);
}

/** A refusal of the gate's (CLOSED, POOL_TIMEOUT, …) as itself, not in drizzle's wrapper; any other failure as it is. */
function ownRefusalFirst(error: unknown): never {
  throw errorChain(error).find((link) => link instanceof BriefdbError) ?? error;
}

/** Resolves when `work` settles (true) or at `deadline` (epoch ms, false), whichever comes first. */
async function settledBy(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(() => true);
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
  const inTime = await Promise.race([settled, late]);
  clearTimeout(timer);
  return inTime;
}

function connect(target: PgTarget, options: OpenOptions): { client: postgres.Sql; finder: ServerFinder | undefined } {
  const timeoutMs = options.timeoutMs ?? 5000;
  const settings = {
    // lists, so that postgres.js does not split "::1" at its colons as it would "host:port" (it
    // takes lists at run time, though its types declare one)
    host: (target.socketDir === undefined ? target.hosts.map((server) => server.host) : [target.socketDir]) as unknown as string,
    port: (target.socketDir === undefined ? target.hosts.map((server) => server.port) : [target.port]) as unknown as number,
    path: target.socketDir === undefined ? undefined : `${target.socketDir}/.s.PGSQL.${target.port}`,
    database: target.database,
    user: target.user,
    password: target.password,
    ssl: sslOption(target.sslmode),
    max: options.poolSize ?? 10,
    connect_timeout: timeoutMs / 1000,
    backoff: reconnectDelaySeconds,
    idle_timeout: 30,
    prepare: options.prepare ?? true,
    fetch_types: false,
    onnotice: () => {},
    // a startup parameter, so every connection has it from its first statement; a transaction
    // pooler refuses or drops it (./pooler.ts). 0 is sent too ("no limit" over a role's default),
    // as text: postgres.js drops a parameter whose value is falsy
    connection: startupParameters(lockTimeoutOf(options)),
  };
  if (!ServerFinder.needed(target)) return { client: postgres(settings), finder: undefined };
  // several servers, or a role asked for: briefdb finds the server (./server-finder.ts) and
  // postgres.js sees one, already connected (left to try a list, it tried for ever when none fitted)
  const finder = new ServerFinder(target, settings, timeoutMs);
  // `socket` is postgres.js's (documented, missing from its types)
  const withFinder = { ...settings, host: [target.host] as unknown as string, port: [target.port] as unknown as number, socket: () => finder.socket() };
  const client = postgres(withFinder as typeof settings);
  return { client, finder };
}

/**
 * How long a connection waits before it connects again, after `failures` connections of the pool
 * closed with an error since one last connected: at most half a second. postgres.js's own curve
 * (3^n / 100 s, up to 20 s) is shared by the pool and held a call's first try for seconds once a
 * few connections had failed: after ten refused connects, each call while the server was down took
 * 10–20 s to fail, not the connect timeout, and the first call once it was back waited as long.
 */
function reconnectDelaySeconds(failures: number): number {
  return Math.min(0.02 * 2 ** failures, 0.5) * (0.5 + Math.random() / 2);
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

function startupParameters(lockTimeoutMs: number): Record<string, string> {
  return { application_name: "briefdb", lock_timeout: String(lockTimeoutMs) };
}

/** The lock bound asked for, in whole milliseconds (0: no limit). */
function lockTimeoutOf(options: OpenOptions): number {
  return Math.max(0, Math.round(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS));
}

/**
 * Waits for an advisory lock as long as its holder works (a migration or seed before this one is
 * not a stuck lock), then puts the lock bound back for the statements that follow (`restore`).
 */
async function takeTurn(tx: Executor, key: number, restore: string): Promise<void> {
  await tx.exec("SET LOCAL lock_timeout = 0");
  await tx.all(sql`SELECT pg_advisory_xact_lock(${key})`);
  await tx.exec(restore);
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
