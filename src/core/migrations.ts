/**
 * Migrations: reads the generated SQL of the target's dialect (drizzle-kit's journal and files),
 * tells applied from pending, and applies the pending ones under the migration lock so that two
 * migrators on one database apply each migration once.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import type { BriefDatabase, Executor } from "../db/database.js";
import { BriefdbError } from "../errors.js";

export const MIGRATIONS_TABLE = "briefdb_migrations";

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

export interface MigrationStatus {
  readonly applied: readonly AppliedMigration[];
  readonly pending: readonly Migration[];
}

export interface MigrateResult {
  /** Tags applied by this run, in order. */
  readonly applied: readonly string[];
  /** How many were already applied before this run. */
  readonly alreadyApplied: number;
  readonly dryRun: boolean;
  /** With dryRun: the statements that would run, per pending migration. */
  readonly plan: readonly Migration[];
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

export async function migrationStatus(db: BriefDatabase): Promise<MigrationStatus> {
  const all = readMigrations(db.migrationsFolder);
  if (!(await db.tableExists(MIGRATIONS_TABLE))) return { applied: [], pending: all };
  return statusFrom(all, await appliedRows(db));
}

/** Throws NOT_MIGRATED unless every migration is applied: for commands that need the schema. */
export async function assertMigrated(db: BriefDatabase): Promise<void> {
  const { pending } = await migrationStatus(db);
  if (pending.length === 0) return;
  throw new BriefdbError(
    "NOT_MIGRATED",
    `${db.target.display} has ${pending.length} pending migration${pending.length === 1 ? "" : "s"}`,
    `run \`briefdb migrate --db ${db.target.display}\` first`,
  );
}

export async function migrate(db: BriefDatabase, options: { dryRun?: boolean } = {}): Promise<MigrateResult> {
  if (options.dryRun) {
    const { applied, pending } = await migrationStatus(db);
    return { applied: [], alreadyApplied: applied.length, dryRun: true, plan: pending };
  }
  return db.withMigrationLock(async (tx) => {
    await tx.exec(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (tag text PRIMARY KEY, hash text NOT NULL, applied_at bigint NOT NULL)`,
    );
    const { applied, pending } = statusFrom(readMigrations(db.migrationsFolder), await appliedRows(tx));
    for (const migration of pending) {
      for (const statement of migration.statements) await tx.exec(statement);
      await tx.run(
        sql`INSERT INTO ${sql.identifier(MIGRATIONS_TABLE)} (tag, hash, applied_at) VALUES (${migration.tag}, ${migration.hash}, ${Date.now()})`,
      );
    }
    return { applied: pending.map((m) => m.tag), alreadyApplied: applied.length, dryRun: false, plan: [] };
  });
}

interface AppliedRow {
  readonly tag: string;
  readonly hash: string;
  readonly appliedAt: Date;
}

async function appliedRows(executor: Executor): Promise<AppliedRow[]> {
  const rows = await executor.all<{ tag: string; hash: string; applied_at: number | string }>(
    sql`SELECT tag, hash, applied_at FROM ${sql.identifier(MIGRATIONS_TABLE)} ORDER BY tag`,
  );
  return rows.map((row) => ({ tag: row.tag, hash: row.hash, appliedAt: new Date(Number(row.applied_at)) }));
}

function statusFrom(all: readonly Migration[], rows: readonly AppliedRow[]): MigrationStatus {
  const files = new Map(all.map((migration) => [migration.tag, migration.hash]));
  const applied = rows.map((row) => ({
    tag: row.tag,
    appliedAt: row.appliedAt,
    changed: files.has(row.tag) && files.get(row.tag) !== row.hash,
  }));
  const done = new Set(rows.map((row) => row.tag));
  return { applied, pending: all.filter((migration) => !done.has(migration.tag)) };
}
