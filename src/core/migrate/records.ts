/**
 * The migrations' records: the generated SQL of the target's dialect (drizzle-kit's journal and
 * files) and the tables that say what was applied (briefdb_migrations) and which steps of an
 * online run finished (briefdb_migration_steps) — read here, applied by migrate.ts.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sql, type SQL } from "drizzle-orm";
import type { BriefDatabase, Executor } from "../../db/database.js";
import { BriefdbError } from "../../errors.js";
import { migrateHint } from "./hint.js";

export const MIGRATIONS_TABLE = "briefdb_migrations";
/** The finished steps of migrations applied online: what a resumed run skips. */
export const STEPS_TABLE = "briefdb_migration_steps";

/**
 * A record table named in the schema briefdb's tables live in, for reads outside a migration run
 * (which pins its search_path to that schema): a path starting elsewhere must not hide them.
 */
function recordTable(db: BriefDatabase, name: string): SQL {
  return sql`${sql.identifier(db.schemaChanges.ownSchema)}.${sql.identifier(name)}`;
}

export interface Migration {
  readonly tag: string;
  readonly hash: string;
  readonly statements: readonly string[];
}

export interface AppliedMigration {
  readonly tag: string;
  readonly appliedAt: Date;
  /** The migration file differs from what was applied (edited after the fact). */
  readonly changed: boolean;
}

/** A pending migration that an interrupted online run left part-way: the steps it finished. */
export interface PartialMigration {
  readonly tag: string;
  readonly finished: readonly string[];
}

interface Journal {
  readonly entries: ReadonlyArray<{ readonly tag: string }>;
}

const cache = new Map<string, readonly Migration[]>();

/** The migrations committed for a dialect, in order. */
export function readMigrations(folder: string): readonly Migration[] {
  const cached = cache.get(folder);
  if (cached) return cached;
  const journal = JSON.parse(readFileSync(join(folder, "meta", "_journal.json"), "utf8")) as Journal;
  const migrations = journal.entries.map(({ tag }) => {
    const text = readFileSync(join(folder, `${tag}.sql`), "utf8");
    const statements = text
      .split("--> statement-breakpoint")
      .map((statement) => statement.trim())
      .filter((statement) => statement !== "");
    return { tag, hash: createHash("sha256").update(text).digest("hex"), statements };
  });
  cache.set(folder, migrations);
  return migrations;
}

/** Applied and pending only: what every command checks before it runs, without the index scan. */
export async function appliedAndPending(db: BriefDatabase): Promise<{ applied: AppliedMigration[]; pending: readonly Migration[] }> {
  const all = readMigrations(db.migrationsFolder);
  if (!(await db.tableExists(MIGRATIONS_TABLE))) return { applied: [], pending: all };
  return statusFrom(all, await appliedRows(db, recordTable(db, MIGRATIONS_TABLE)));
}

export async function pendingMigrations(db: BriefDatabase): Promise<readonly Migration[]> {
  return (await appliedAndPending(db)).pending;
}

/**
 * When the database applied migration `tag` (its briefdb_migrations record, the migrating
 * machine's clock); undefined when the tag is not applied or there is no record table.
 */
export async function migrationAppliedAt(db: BriefDatabase, tag: string): Promise<Date | undefined> {
  if (!(await db.tableExists(MIGRATIONS_TABLE))) return undefined;
  const [row] = await db.all<{ applied_at: number | string }>(
    sql`SELECT applied_at FROM ${recordTable(db, MIGRATIONS_TABLE)} WHERE tag = ${tag}`,
  );
  return row === undefined ? undefined : new Date(Number(row.applied_at));
}

/** The indexes the migration files create: the ones `migrate` may rebuild. */
export async function ownIndexNames(db: BriefDatabase): Promise<Set<string>> {
  const shapes = await Promise.all(readMigrations(db.migrationsFolder).map((m) => db.schemaChanges.describe(m.statements)));
  return new Set(shapes.flat().flatMap((shape) => (shape.kind === "create-index" && shape.index !== null ? [shape.index] : [])));
}

/** Throws NOT_MIGRATED unless every migration is applied: for commands that need the schema. */
export async function assertMigrated(db: BriefDatabase): Promise<void> {
  const { pending } = await appliedAndPending(db);
  if (pending.length === 0) return;
  throw new BriefdbError(
    "NOT_MIGRATED",
    `${db.target.display} has ${pending.length} pending migration${pending.length === 1 ? "" : "s"}`,
    migrateHint(db.target),
  );
}

/**
 * Per pending migration, the steps (by their place in its plan) that an interrupted online run
 * finished and recorded, from the same version of its file: the run resumes after them.
 */
export async function finishedStepNumbers(db: BriefDatabase, pending: readonly Migration[]): Promise<Map<string, Set<number>>> {
  const finished = new Map<string, Set<number>>();
  if (pending.length === 0 || !(await db.tableExists(STEPS_TABLE))) return finished;
  const rows = await db.all<{ tag: string; step: number | string; hash: string }>(
    sql`SELECT tag, step, hash FROM ${recordTable(db, STEPS_TABLE)}`,
  );
  for (const { tag, hash } of pending) {
    const steps = rows.filter((row) => row.tag === tag && row.hash === hash).map((row) => Number(row.step));
    if (steps.length > 0) finished.set(tag, new Set(steps));
  }
  return finished;
}

/** The record tables, created on first use (and on databases migrated before steps were recorded). */
export async function createRecordTables(executor: Executor): Promise<void> {
  await executor.exec(
    `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (tag text PRIMARY KEY, hash text NOT NULL, applied_at bigint NOT NULL)`,
  );
  await executor.exec(
    `CREATE TABLE IF NOT EXISTS ${STEPS_TABLE} (tag text NOT NULL, step integer NOT NULL, hash text NOT NULL, action text NOT NULL, finished_at bigint NOT NULL, PRIMARY KEY (tag, step))`,
  );
}

export async function partialMigrations(db: BriefDatabase, pending: readonly Migration[]): Promise<PartialMigration[]> {
  if (pending.length === 0 || !(await db.tableExists(STEPS_TABLE))) return [];
  const rows = await db.all<{ tag: string; action: string }>(
    sql`SELECT tag, action FROM ${recordTable(db, STEPS_TABLE)} ORDER BY tag, step`,
  );
  return pending.flatMap(({ tag }) => {
    const finished = rows.filter((row) => row.tag === tag).map((row) => row.action);
    return finished.length > 0 ? [{ tag, finished }] : [];
  });
}

/** An offline run would repeat the steps an interrupted online run finished, and fail on them. */
export async function refusePartial(db: BriefDatabase): Promise<void> {
  if (!(await db.tableExists(MIGRATIONS_TABLE))) return;
  const { pending } = statusFrom(readMigrations(db.migrationsFolder), await appliedRows(db, recordTable(db, MIGRATIONS_TABLE)));
  const [partial] = await partialMigrations(db, pending);
  if (partial === undefined) return;
  throw new BriefdbError(
    "USAGE",
    `migration ${partial.tag} was partly applied online (${partial.finished.join("; ")}); --offline would repeat those steps`,
    "run `briefdb migrate` without --offline to finish it",
  );
}

interface AppliedRow {
  readonly tag: string;
  readonly hash: string;
  readonly appliedAt: Date;
}

/** The applied migrations; `table` qualified where the executor's search_path is not pinned (recordTable). */
export async function appliedRows(executor: Executor, table: SQL = sql`${sql.identifier(MIGRATIONS_TABLE)}`): Promise<AppliedRow[]> {
  const rows = await executor.all<{ tag: string; hash: string; applied_at: number | string }>(
    sql`SELECT tag, hash, applied_at FROM ${table} ORDER BY tag`,
  );
  return rows.map((row) => ({ tag: row.tag, hash: row.hash, appliedAt: new Date(Number(row.applied_at)) }));
}

export function statusFrom(
  all: readonly Migration[],
  rows: readonly AppliedRow[],
): { applied: AppliedMigration[]; pending: Migration[] } {
  const files = new Map(all.map((migration) => [migration.tag, migration.hash]));
  const applied = rows.map((row) => ({
    tag: row.tag,
    appliedAt: row.appliedAt,
    changed: files.has(row.tag) && files.get(row.tag) !== row.hash,
  }));
  const done = new Set(rows.map((row) => row.tag));
  return { applied, pending: all.filter((migration) => !done.has(migration.tag)) };
}
