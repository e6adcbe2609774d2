/**
 * migrate: applies the pending migrations under the migration lock, so that two migrators on one
 * database apply each migration once. Where the dialect builds indexes online (PostgreSQL), index
 * changes run without blocking writes (online.ts) unless `offline`; otherwise each migration runs
 * in one transaction as written.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import type { OnlineSchemaChanges } from "../../db/schema-changes.js";
import { pendingValidation, planPendingMigrations } from "./plan.js";
import { appliedAndPending, appliedRows, finishedStepNumbers, MIGRATIONS_TABLE, readMigrations, refusePartial, statusFrom, type Migration } from "./records.js";
import type { MigrateOptions, MigrateResult } from "./result.js";

export type { MigrateOptions, MigrateProgress, MigrateResult } from "./result.js";

export async function migrate(db: BriefDatabase, options: MigrateOptions = {}): Promise<MigrateResult> {
  const online = db.schemaChanges.online;
  if (options.dryRun) {
    const { applied, pending } = await appliedAndPending(db);
    const goesOnline = online !== null && !options.offline;
    // what will run: online, an index change is rewritten (CONCURRENTLY, a temporary name) and
    // splits the migration's transaction; the files' own SQL would not say so
    // as the real run: --offline refuses a migration an online run left part-way
    if (!goesOnline) await refusePartial(db);
    const plan = online !== null && goesOnline ? await onlinePlan(db, online, pending) : pending;
    return { applied: [], alreadyApplied: applied.length, dryRun: true, plan, online: goesOnline, repairedIndexes: [] };
  }
  if (online !== null && !options.offline) {
    const { migrateOnline } = await import("./online.js");
    return migrateOnline(db, online, options.onProgress ? { onProgress: options.onProgress } : {});
  }
  await refusePartial(db);
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
    return { applied: pending.map((m) => m.tag), alreadyApplied: applied.length, dryRun: false, plan: [], online: false, repairedIndexes: [] };
  });
}

/**
 * The pending migrations as the online runner executes them: each transaction's BEGIN and COMMIT
 * shown, the steps an interrupted run finished left out (the runner resumes after them), an index
 * that step would build left INVALID by that run dropped first, and a constraint that run added
 * but someone dropped since added again before its validation (as the runner does).
 */
async function onlinePlan(db: BriefDatabase, online: OnlineSchemaChanges, pending: readonly Migration[]): Promise<Migration[]> {
  const finished = await finishedStepNumbers(db, pending);
  const invalid = new Set((await db.schemaChanges.invalidIndexes()).map((i) => i.index));
  const plans = await planPendingMigrations(db.schemaChanges, pending, online);
  return Promise.all(
    plans.map(async ({ migration, steps }) => {
      const done = finished.get(migration.tag) ?? new Set<number>();
      const statements = await Promise.all(
        steps.map(async (step, i): Promise<readonly string[]> => {
          if (done.has(i)) return [];
          if (step.kind === "transaction") return ["BEGIN", ...step.statements, "COMMIT"];
          if (step.kind === "validate-constraint") return (await pendingValidation(db, online, step, done)).map((v) => v.statement);
          if (step.kind === "build-index" && invalid.has(step.index)) return [online.dropStatement(step.index), step.statement];
          return [step.statement];
        }),
      );
      return { ...migration, statements: statements.flat() };
    }),
  );
}

