/**
 * Reading and writing the app tables from tests through the built library: row counts, the
 * balance invariant, and rows normalised so that SQLite and PostgreSQL can be compared.
 */
import { existsSync } from "node:fs";
import { sql, type SQL } from "drizzle-orm";
import { localModeOptimizations, openDatabase, type BriefDatabase, type SeedOptions, type SeedResult } from "../../src/index.js";
import type { TestDialect } from "./databases.js";

export const APP_TABLES = ["models", "users", "briefs", "reviews", "token_transactions", "query_log"] as const;

export async function withDatabase<T>(url: string, work: (db: BriefDatabase) => Promise<T>): Promise<T> {
  const db = await openDatabase(url);
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

/** Seeds through the library, in-process: quicker than the CLI where the CLI is not what a test is about. */
export function seedWith(url: string, options: SeedOptions): Promise<SeedResult> {
  return withDatabase(url, (db) => localModeOptimizations.seedTestData(db, options));
}

/** Rows per app table. */
export function tableCounts(url: string): Promise<Record<string, number>> {
  return withDatabase(url, async (db) => {
    const counts: Record<string, number> = {};
    for (const table of APP_TABLES) {
      const [row] = await db.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM ${sql.identifier(table)}`);
      counts[table] = Number(row?.n);
    }
    return counts;
  });
}

/** Users whose token_balance differs from the sum of their ledger amounts (the ledger invariant, docs/architecture.md). */
export function driftingUsers(url: string): Promise<string[]> {
  return withDatabase(url, async (db) => {
    const rows = await db.all<{ id: string }>(sql`
      SELECT u.id FROM users u
      WHERE u.token_balance <> COALESCE((SELECT sum(t.amount) FROM token_transactions t WHERE t.user_id = u.id), 0)
      ORDER BY u.id`);
    return rows.map((row) => row.id);
  });
}

/** Runs statements in order, each on its own. */
export function execute(url: string, statements: readonly SQL[]): Promise<void> {
  return withDatabase(url, async (db) => {
    for (const statement of statements) await db.run(statement);
  });
}

/** A fixed timestamp written the way the dialect's schema stores it. */
export function timestampLiteral(dialect: TestDialect): SQL {
  return sql.raw(dialect === "sqlite" ? "1700000000000" : "'2023-11-14 22:13:20+00'");
}

const TIMESTAMPS = new Set(["created_at", "updated_at", "recorded_at"]);
const NUMBERS = new Set(["token_balance", "held_tokens", "amount", "balance_after", "view_count", "rating"]);

/** Every row of every seeded table, ordered by id, with values in one dialect-neutral form. */
export function dumpRows(url: string): Promise<Record<string, Array<Record<string, unknown>>>> {
  return withDatabase(url, async (db) => {
    const dump: Record<string, Array<Record<string, unknown>>> = {};
    for (const table of APP_TABLES.filter((t) => t !== "query_log")) {
      const rows = await db.all(sql`SELECT * FROM ${sql.identifier(table)} ORDER BY id`);
      dump[table] = rows.map(normalise);
    }
    return dump;
  });
}

function normalise(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    if (value === null) out[column] = null;
    else if (TIMESTAMPS.has(column)) out[column] = typeof value === "string" ? pgTimestampMs(value) : Number(value);
    else if (NUMBERS.has(column)) out[column] = Number(value);
    else if (column === "published") out[column] = value === true || value === 1;
    else out[column] = value;
  }
  return out;
}

/** PostgreSQL's text form ("2024-09-02 15:28:37.35+00") as epoch milliseconds. */
function pgTimestampMs(text: string): number {
  return Date.parse(text.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00"));
}

/** Whether a database still has no schema at all: the SQLite file was never created, or no users table. */
export async function untouched(dialect: TestDialect, url: string): Promise<boolean> {
  if (dialect === "sqlite") return !existsSync(url.replace(/^file:/, ""));
  return withDatabase(url, async (db) => !(await db.tableExists("users")));
}
