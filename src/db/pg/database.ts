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
  LedgerStatements,
  OpenOptions,
  PoolUse,
  Row,
  Transaction,
  TransactionOptions,
} from "../database.js";
import { errorCode } from "../driver-errors.js";
import { migrationsFolderOf } from "../../package-root.js";
import type { PgTarget, SslMode } from "../target.js";
import { pgLedger } from "./ledger.js";
import { PgInspector } from "./inspector.js";
import { pgBulkWrite } from "./bulk-insert.js";
import * as schema from "./schema.js";
import { pgTime } from "./time.js";
import { PgSchemaChanges, type SessionConnection } from "./schema-changes.js";

export type PgOrm = PostgresJsDatabase<typeof schema>;
/** Drizzle inside one of briefdb's PostgreSQL transactions. */
export type PgTx = Parameters<Parameters<PgOrm["transaction"]>[0]>[0];
/** A PostgreSQL BriefDatabase whose Drizzle handles are typed. */
export type PgBriefDatabase = BriefDatabase<PgOrm, PgTx>;

/** Key of the advisory lock that migrators take turns on ("briefdb" in ASCII). */
const MIGRATION_LOCK_KEY = 0x62726965666462;
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOENT",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "28P01",
  "28000",
  "3D000",
  "57P03",
]);
const DEFAULT_RETRIES = 5;

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
  private readonly prepare: boolean;

  /** With `client`, briefdb uses the app's own pool and never ends it. */
  constructor(
    readonly target: PgTarget,
    options: OpenOptions = {},
    client?: postgres.Sql,
  ) {
    this.ownsConnection = client === undefined;
    this.client = client ?? connect(target, options);
    this.orm = drizzle(this.client, { schema });
    this.prepare = client === undefined ? (options.prepare ?? true) : client.options.prepare;
    this.schemaChanges = new PgSchemaChanges(this, () => this.sessionConnection(options), MIGRATION_LOCK_KEY);
  }

  /**
   * One connection for a migration session. Our own: a pool of one beside the main pool (postgres.js's
   * reserve() hangs on a pool that has not connected yet when types are not fetched,
   * porsager/postgres#751). The app's pool: one of its connections, reserved once it is warm.
   */
  private async sessionConnection(options: OpenOptions): Promise<SessionConnection> {
    if (this.ownsConnection) {
      const single = connect(this.target, { ...options, poolSize: 1 });
      return { sql: single, done: () => single.end({ timeout: 5 }) };
    }
    await this.client`SELECT 1`;
    const reserved = await this.client.reserve();
    return { sql: reserved, done: async () => reserved.release() };
  }

  get drizzle(): PgOrm {
    return this.orm;
  }

  get ledger(): LedgerStatements {
    this.ledgerStatements ??= pgLedger(this.client, this.prepare);
    return this.ledgerStatements;
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
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.orm.transaction((tx) => operation(transactionOver(tx)));
      } catch (error) {
        if (attempt >= retries || this.classify(error) !== "retryable") throw error;
        await sleep(Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random()));
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

  withMigrationLock<T>(operation: (tx: Executor) => Promise<T>): Promise<T> {
    return this.transaction(
      async (tx) => {
        await tx.all(sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
        return operation(tx);
      },
      { retries: 0 },
    );
  }

  bulkWrite<T>(operation: (writer: BulkWriter) => Promise<T>): Promise<T> {
    return pgBulkWrite(this.client, operation);
  }

  async tableExists(name: string): Promise<boolean> {
    const [row] = await this.all<{ found: boolean }>(sql`SELECT to_regclass(${name}) IS NOT NULL AS found`);
    return row?.found === true;
  }

  async serverVersion(): Promise<string> {
    const [row] = await this.all<{ version: string }>(sql`SELECT current_setting('server_version') AS version`);
    return `PostgreSQL ${row?.version ?? "unknown"}`;
  }

  async explain(query: SQL): Promise<string[]> {
    const rows = await this.all<{ "QUERY PLAN": string }>(sql`EXPLAIN ${query}`);
    return rows.map((row) => row["QUERY PLAN"]);
  }

  classify(error: unknown): FailureKind {
    const code = errorCode(error) ?? "";
    if (UNREACHABLE_CODES.has(code)) return "unreachable";
    if (code === "23505") return "unique_violation";
    if (code === "23514") return "check_violation";
    if (code === "23503") return "foreign_key_violation";
    if (code === "42P01" || code === "42703") return "undefined_table";
    if (code === "40001" || code === "40P01") return "retryable";
    return "other";
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.client.end({ timeout: 5 });
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
    connection: { application_name: "briefdb" },
  });
}

function transactionOver(tx: PgTx): Transaction<PgTx> {
  return {
    all: async <T extends Row>(query: SQL) => (await tx.execute(query)) as unknown as T[],
    run: async (query: SQL) => (await tx.execute(query)).count,
    exec: async (script: string) => void (await tx.execute(sql.raw(script))),
    drizzle: tx,
    ledger: pgLedger(transactionSqlOf(tx), false),
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

function sslOption(mode: SslMode): boolean | "allow" | "prefer" | "require" | "verify-full" {
  if (mode === "disable") return false;
  if (mode === "verify-ca") return "verify-full";
  return mode;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
