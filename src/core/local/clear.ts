/**
 * clearTestData: removes the rows `seed` wrote and nothing the app wrote, or with `all` empties
 * every app table (never the migrations table). Local targets only, checked before any query.
 *
 * Seeded rows are the ones whose id starts with `seed-`. Rows the app wrote that cannot outlive
 * them (foreign keys) go with them, as ON DELETE CASCADE would: the ledger rows of a seeded
 * user, reviews of a removed brief or by a seeded user, briefs by a seeded user or on a seeded
 * model, the holds of a seeded user. One exception keeps every remaining balance equal to its
 * ledger: an app user's ledger row (or hold) that names a removed brief stays, with its brief_id
 * set to NULL ("detached").
 */
import { sql, type SQL } from "drizzle-orm";
import type { BriefDatabase, Executor } from "../../db/database.js";
import { assertLocalTarget } from "../../db/target.js";
import { assertMigrated } from "../migrate/records.js";
import { SEED_ID_PREFIX } from "./seed-rows.js";

export type AppTable = "users" | "models" | "briefs" | "reviews" | "token_transactions" | "token_holds" | "query_log";
export type TableCounts = Record<AppTable, number>;

export interface ClearOptions {
  /** Empty every app table, not only the seeded rows. */
  readonly all?: boolean;
  /**
   * Called before each statement with what it is about to do; the statement starts once a
   * returned promise settles (so that a spinner can draw before a long statement holds the thread).
   */
  readonly onProgress?: ClearProgressListener;
}

/** One statement of a clear: removing a table's rows, or detaching app ledger rows from removed briefs. */
export interface ClearProgress {
  readonly action: "remove" | "detach";
  readonly table: AppTable;
  /** 1-based, of `steps`. */
  readonly step: number;
  readonly steps: number;
}

export type ClearProgressListener = (progress: ClearProgress) => void | Promise<void>;

export interface ClearResult {
  readonly all: boolean;
  /** Rows removed, per table. */
  readonly counts: TableCounts;
  /** App ledger rows kept, detached from a brief that was removed. */
  readonly detachedLedgerRows: number;
}

export async function clearTestData(db: BriefDatabase, options: ClearOptions = {}): Promise<ClearResult> {
  const all = options.all === true;
  assertLocalTarget(db.target, all ? "clear --all" : "clear");
  await assertMigrated(db);
  const report = options.onProgress ?? (() => {});
  return db.transaction(
    async (tx) => {
      await db.lockTestData(tx);
      return all ? removeAllRows(tx, report) : removeSeededRows(tx, report);
    },
    // the lock comes first and what follows must see what a seed before it committed
    { isolation: "read committed" },
  );
}

/** Deletes the seeded rows and what depends on them; run inside a transaction. */
export async function removeSeededRows(tx: Executor, report: ClearProgressListener = () => {}): Promise<ClearResult> {
  const doomedBriefs = sql`SELECT id FROM briefs WHERE ${seeded("id")} OR ${seeded("user_id")} OR ${seeded("model_id")}`;
  let step = 0;
  const next = async (action: ClearProgress["action"], table: AppTable, statement: SQL) => {
    await report({ action, table, step: ++step, steps: 8 });
    return tx.run(statement);
  };
  const tokenTransactions = await next(
    "remove",
    "token_transactions",
    sql`DELETE FROM token_transactions WHERE ${seeded("user_id")} OR ${seeded("id")}`,
  );
  const tokenHolds = await next("remove", "token_holds", sql`DELETE FROM token_holds WHERE ${seeded("user_id")} OR ${seeded("id")}`);
  const detachedLedgerRows = await next(
    "detach",
    "token_transactions",
    sql`UPDATE token_transactions SET brief_id = NULL WHERE brief_id IN (${doomedBriefs})`,
  );
  await next("detach", "token_holds", sql`UPDATE token_holds SET brief_id = NULL WHERE brief_id IN (${doomedBriefs})`);
  const reviews = await next(
    "remove",
    "reviews",
    sql`DELETE FROM reviews WHERE ${seeded("id")} OR ${seeded("user_id")} OR brief_id IN (${doomedBriefs})`,
  );
  const briefs = await next("remove", "briefs", sql`DELETE FROM briefs WHERE id IN (${doomedBriefs})`);
  const users = await next("remove", "users", sql`DELETE FROM users WHERE ${seeded("id")}`);
  const models = await next("remove", "models", sql`DELETE FROM models WHERE ${seeded("id")}`);
  return {
    all: false,
    counts: { models, users, briefs, reviews, token_transactions: tokenTransactions, token_holds: tokenHolds, query_log: 0 },
    detachedLedgerRows,
  };
}

/** Children before parents, so that no foreign key is ever left dangling. */
const DELETE_ORDER: readonly AppTable[] = ["token_transactions", "token_holds", "reviews", "briefs", "users", "models", "query_log"];

async function removeAllRows(tx: Executor, report: ClearProgressListener): Promise<ClearResult> {
  const counts: TableCounts = { models: 0, users: 0, briefs: 0, reviews: 0, token_transactions: 0, token_holds: 0, query_log: 0 };
  for (const [index, table] of DELETE_ORDER.entries()) {
    await report({ action: "remove", table, step: index + 1, steps: DELETE_ORDER.length });
    counts[table] = await tx.run(sql`DELETE FROM ${sql.identifier(table)}`);
  }
  return { all: true, counts, detachedLedgerRows: 0 };
}

/**
 * `column` holds a seeded id. substr, not LIKE: LIKE is case-insensitive on SQLite and `_`
 * would match any character.
 */
function seeded(column: string): SQL {
  return sql`substr(${sql.identifier(column)}, 1, ${sql.raw(String(SEED_ID_PREFIX.length))}) = ${SEED_ID_PREFIX}`;
}
