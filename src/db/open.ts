/**
 * openDatabase: a URL in — or the app's own postgres.js / better-sqlite3 connection — and a
 * BriefDatabase out. Each driver is imported only when its dialect is used, so
 * `briefdb --version` and SQLite runs never load postgres.js and the reverse.
 */
import type BetterSqlite3 from "better-sqlite3";
import type postgres from "postgres";
import { BriefdbError } from "../errors.js";
import type { BriefDatabase, OpenOptions } from "./database.js";
import type { PgBriefDatabase } from "./pg/database.js";
import type { SqliteBriefDatabase } from "./sqlite/database.js";
import { chooseUrl, parseTarget, type PgTarget, type Target } from "./target.js";

/**
 * Opens a database. Given the app's own postgres.js `Sql` or better-sqlite3 `Database`, briefdb
 * shares that connection (one pool, not two) and its close() leaves it open for the app.
 */
export async function openDatabase(client: postgres.Sql, options?: OpenOptions): Promise<PgBriefDatabase>;
export async function openDatabase(client: BetterSqlite3.Database, options?: OpenOptions): Promise<SqliteBriefDatabase>;
export async function openDatabase(url?: string, options?: OpenOptions): Promise<BriefDatabase>;
export async function openDatabase(
  source?: string | postgres.Sql | BetterSqlite3.Database,
  options: OpenOptions = {},
): Promise<BriefDatabase> {
  if (source === undefined || typeof source === "string") return openTarget(parseTarget(chooseUrl(source)), options);
  if (isPostgresClient(source)) return adoptPostgres(source, options);
  if (isSqliteClient(source)) return adoptSqlite(source, options);
  throw new BriefdbError("USAGE", "openDatabase takes a URL, a postgres.js Sql or a better-sqlite3 Database");
}

export async function openTarget(target: Target, options: OpenOptions = {}): Promise<BriefDatabase> {
  if (target.dialect === "sqlite") {
    const { SqliteDatabase } = await import("./sqlite/database.js");
    return new SqliteDatabase(target, options);
  }
  const { PgDatabase } = await import("./pg/database.js");
  return new PgDatabase(target, options);
}

function isPostgresClient(value: unknown): value is postgres.Sql {
  const candidate = value as Partial<postgres.Sql> | null;
  return typeof value === "function" && typeof candidate?.unsafe === "function" && typeof candidate.begin === "function";
}

function isSqliteClient(value: unknown): value is BetterSqlite3.Database {
  const candidate = value as Partial<BetterSqlite3.Database> | null;
  return typeof value === "object" && typeof candidate?.prepare === "function" && typeof candidate.pragma === "function";
}

async function adoptPostgres(client: postgres.Sql, options: OpenOptions): Promise<PgBriefDatabase> {
  const { column, row } = client.options.transform;
  if (column.from !== undefined || row.from !== undefined) {
    // briefdb reads its own rows by their column names
    throw new BriefdbError("USAGE", "briefdb needs a postgres.js client without column or row transforms (such as postgres.camel)");
  }
  const o = client.options;
  const host = o.host[0] ?? "localhost";
  const port = o.port[0] ?? 5432;
  const socket = o.path ? o.path.replace(/\/\.s\.PGSQL\.\d+$/, "") : undefined;
  const target: PgTarget = {
    dialect: "postgresql",
    host,
    port,
    hosts: o.host.map((name, i) => ({ host: name, port: o.port[i] ?? port })),
    targetSessionAttrs: (o.target_session_attrs ?? "any") as PgTarget["targetSessionAttrs"],
    socketDir: socket,
    database: o.database,
    user: o.user,
    password: undefined, // never kept: the app's client already holds it
    sslmode: "prefer",
    display: `postgres://${o.user}@${socket === undefined ? o.host.map((name, i) => `${name}:${o.port[i] ?? port}`).join(",") : `/?host=${socket}`}/${o.database} (the app's connection)`,
  };
  const { PgDatabase } = await import("./pg/database.js");
  return new PgDatabase(target, options, client);
}

async function adoptSqlite(client: BetterSqlite3.Database, options: OpenOptions): Promise<SqliteBriefDatabase> {
  const parsed = parseTarget(client.memory ? ":memory:" : client.name);
  if (parsed.dialect !== "sqlite") throw new BriefdbError("USAGE", `cannot read the SQLite file name "${client.name}"`);
  const { SqliteDatabase } = await import("./sqlite/database.js");
  return new SqliteDatabase(parsed, options, client);
}
