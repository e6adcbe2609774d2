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
  Row,
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
import { PgSchemaChanges } from "./schema-changes.js";

export type PgOrm = PostgresJsDatabase<typeof schema>;

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

type TransactionHandle = Parameters<Parameters<PgOrm["transaction"]>[0]>[0];

export class PgDatabase implements BriefDatabase {
  readonly dialect = "postgresql" as const;
  readonly migrationsFolder = migrationsFolderOf("pg");
  readonly time = pgTime;
  readonly inspector = new PgInspector(this);
  readonly schemaChanges: PgSchemaChanges;
  readonly client: postgres.Sql;
  readonly orm: PgOrm;
  private ledgerStatements: LedgerStatements | undefined;
  private readonly prepare: boolean;

  constructor(
    readonly target: PgTarget,
    options: OpenOptions = {},
  ) {
    this.client = connectTo(target, options, options.poolSize ?? 10);
    this.orm = drizzle(this.client, { schema });
    // the migration session is a connection of its own: postgres.js's reserve() hangs on a pool
    // that has not connected yet when types are not fetched (porsager/postgres#751)
    this.schemaChanges = new PgSchemaChanges(this, () => connectTo(target, options, 1), MIGRATION_LOCK_KEY);
    this.prepare = options.prepare ?? true;
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

  async transaction<T>(operation: (tx: Executor) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const retries = options.retries ?? DEFAULT_RETRIES;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.orm.transaction((tx) => operation(ormTransactionExecutor(tx)));
      } catch (error) {
        if (attempt >= retries || this.classify(error) !== "retryable") throw error;
        await sleep(Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random()));
      }
    }
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
    await this.client.end({ timeout: 5 });
  }
}

function connectTo(target: PgTarget, options: OpenOptions, max: number): postgres.Sql {
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
    max,
    connect_timeout: (options.timeoutMs ?? 5000) / 1000,
    idle_timeout: 30,
    prepare: options.prepare ?? true,
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: "briefdb" },
  });
}

function ormTransactionExecutor(tx: TransactionHandle): Executor {
  return {
    all: async <T extends Row>(query: SQL) => (await tx.execute(query)) as unknown as T[],
    run: async (query: SQL) => (await tx.execute(query)).count,
    exec: async (script: string) => void (await tx.execute(sql.raw(script))),
  };
}

function sslOption(mode: SslMode): boolean | "allow" | "prefer" | "require" | "verify-full" {
  if (mode === "disable") return false;
  if (mode === "verify-ca") return "verify-full";
  return mode;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
