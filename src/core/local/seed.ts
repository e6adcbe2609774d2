/**
 * seedTestData: fills a local database with realistic, deterministic test data. Applies pending
 * migrations first, then in one transaction removes an earlier seed (so re-seeding never
 * duplicates; concurrent seeds and clears take turns on the test-data lock) and streams every table through the dialect's bulk insert in batches, so memory
 * stays flat however many rows are asked for. Local targets only, checked before any query.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import type { BriefDatabase, BulkRow, BulkWriter } from "../../db/database.js";
import { rootMessage } from "../../db/driver-errors.js";
import { assertLocalTarget } from "../../db/target.js";
import { BriefdbError, firstLine } from "../../errors.js";
import { removeSeededRows, type ClearResult } from "./clear.js";
import { migrate } from "../migrate/migrate.js";
import { elapsedMs, roundMs } from "../stats.js";
import { seedTables, type SeedTable, type SeedTableName } from "./seed-rows.js";
import { checkedSeed, DEFAULT_SEED, resolveSeedSizes, type SeedSizeOptions, type SeedSizes } from "./seed-sizes.js";

const BATCH_ROWS = 5000;

export type SeedCounts = Record<SeedTableName, number>;

export type SeedProgress =
  | { readonly phase: "replacing"; readonly rowsTotal: number }
  | {
      readonly phase: "inserting";
      readonly table: SeedTableName;
      /** Rows of this table written so far, and to write. */
      readonly done: number;
      readonly total: number;
      /** Rows of all tables written so far, and to write. */
      readonly rowsDone: number;
      readonly rowsTotal: number;
    };

export interface SeedOptions extends SeedSizeOptions {
  /** Same seed and sizes, same rows (ids included) on every dialect. Default 1. */
  readonly seed?: number;
  /** Called as the work advances: once before an earlier seed is removed, then after every batch. */
  readonly onProgress?: (progress: SeedProgress) => void;
}

export interface SeedResult {
  readonly seed: number;
  readonly sizes: SeedSizes;
  /** Migrations this run applied before seeding (empty when the schema was up to date). */
  readonly migrated: readonly string[];
  /** Rows written, per table. */
  readonly counts: SeedCounts;
  /** What removing the earlier seed took away first. */
  readonly replaced: ClearResult;
  readonly rows: number;
  readonly durationMs: number;
}

export async function seedTestData(db: BriefDatabase, options: SeedOptions = {}): Promise<SeedResult> {
  assertLocalTarget(db.target, "seed");
  const sizes = resolveSeedSizes(options);
  const seed = checkedSeed(options.seed ?? DEFAULT_SEED);
  const started = process.hrtime.bigint();
  const { applied } = await migrate(db);
  const tables = seedTables(seed, sizes);
  let written: { replaced: ClearResult; counts: SeedCounts; rows: number };
  try {
    written = await db.bulkWrite(async (writer) => {
      await db.lockTestData(writer);
      return replaceSeed(writer, tables, options.onProgress ?? (() => {}));
    });
  } catch (error) {
    throw db.classify(error) === "unique_violation" ? collision(error) : error;
  }
  return { seed, sizes, migrated: applied, ...written, durationMs: roundMs(elapsedMs(started)) };
}

/** In the bulk-write transaction: the earlier seed out, every table in. */
async function replaceSeed(
  writer: BulkWriter,
  tables: readonly SeedTable[],
  report: (progress: SeedProgress) => void,
): Promise<{ replaced: ClearResult; counts: SeedCounts; rows: number }> {
  const rowsTotal = tables.reduce((total, table) => total + table.count, 0);
  report({ phase: "replacing", rowsTotal });
  const replaced = await removeSeededRows(writer);
  const counts: Partial<SeedCounts> = {};
  let rowsDone = 0;
  for (const table of tables) {
    let done = 0;
    const advance = (rows: number) => {
      done += rows;
      rowsDone += rows;
      report({ phase: "inserting", table: table.name, done, total: table.count, rowsDone, rowsTotal });
    };
    advance(0);
    counts[table.name] = await writer.insert(table.name, table.columns, inBatches(table.rows(), advance));
  }
  return { replaced, counts: counts as SeedCounts, rows: rowsDone };
}

/** A seeded row met an app row with the same unique value: say which values seed reserves. */
function collision(error: unknown): BriefdbError {
  return new BriefdbError(
    "DB_ERROR",
    `seed collides with a row the app wrote (${firstLine(rootMessage(error))}); nothing was seeded`,
    "seed reserves ids starting with seed-, emails @seed.example and slugs with seed in them: rename the app's row",
    { cause: error },
  );
}

/**
 * Groups rows into batches, reporting each once the writer has taken it, and yields to the event
 * loop between batches so that a progress bar can redraw (better-sqlite3 would otherwise hold the
 * thread for the whole load).
 */
async function* inBatches(rows: Iterable<BulkRow>, advance: (rows: number) => void): AsyncGenerator<BulkRow[]> {
  let batch: BulkRow[] = [];
  for (const row of rows) {
    batch.push(row);
    if (batch.length < BATCH_ROWS) continue;
    yield batch;
    advance(batch.length);
    batch = [];
    await nextTurn();
  }
  if (batch.length === 0) return;
  yield batch;
  advance(batch.length);
}
