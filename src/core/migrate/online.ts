/**
 * The online migration runner: applies pending migrations step by step (see migration-plan.ts)
 * on one session that holds the migration lock, recording each finished step in
 * briefdb_migration_steps so that a run interrupted between steps resumes where it stopped. An
 * index left INVALID by an interrupted build is dropped and rebuilt before anything else runs.
 * Short lock waits — every transaction step, whatever its statements (ADD COLUMN, a constraint added
 * NOT VALID), waits for a lock at most SHORT_LOCK_WAIT_MS and is retried a bounded number of times, so that a
 * migration never queues in front of the app's queries for long. Index builds and constraint
 * validations take locks that let writes go on: they wait as long as it takes.
 */
import { sql, type SQL } from "drizzle-orm";
import type { BriefDatabase, Executor } from "../../db/database.js";
import type { ConstraintState, IndexBuildProgress, MigrationSession, OnlineSchemaChanges } from "../../db/schema-changes.js";
import { BriefdbError } from "../../errors.js";
import { sleep } from "../../retry.js";
import {
  describeStep,
  invalidIndexAction,
  planPendingMigrations,
  validationStatements,
  type MigrationStep,
  type PlannedMigration,
} from "./plan.js";
import type { MigrateProgress, MigrateResult } from "./result.js";
import {
  appliedRows,
  createRecordTables,
  MIGRATIONS_TABLE,
  ownIndexNames,
  readMigrations,
  STEPS_TABLE,
  statusFrom,
} from "./records.js";

const SHORT_LOCK_WAIT_MS = 3000;
const SHORT_LOCK_WAIT_ATTEMPTS = 5;
const PROGRESS_EVERY_MS = 500;

export interface OnlineMigrateOptions {
  readonly onProgress?: (event: MigrateProgress) => void;
}

export async function migrateOnline(
  db: BriefDatabase,
  online: OnlineSchemaChanges,
  options: OnlineMigrateOptions = {},
): Promise<MigrateResult> {
  return online.withSession(async (session) => {
    await createRecordTables(session);
    const { applied, pending } = statusFrom(readMigrations(db.migrationsFolder), await appliedRows(session));
    const plans = await planPendingMigrations(db.schemaChanges, pending, online);
    const runner = new StepRunner(db, online, session, options.onProgress ?? (() => {}));
    const repaired = await runner.repairInvalidIndexes(plans);
    for (const plan of plans) await runner.apply(plan);
    return {
      applied: pending.map((m) => m.tag),
      alreadyApplied: applied.length,
      dryRun: false,
      plan: [],
      online: true,
      repairedIndexes: [...repaired, ...runner.repaired],
      foreignInvalidIndexes: runner.foreign,
    };
  });
}

class StepRunner {
  /** INVALID indexes a build step found and rebuilt. */
  readonly repaired: string[] = [];
  /** INVALID indexes that are not briefdb's, left alone. */
  readonly foreign: string[] = [];

  constructor(
    private readonly db: BriefDatabase,
    private readonly online: OnlineSchemaChanges,
    private readonly session: MigrationSession,
    private readonly onProgress: (event: MigrateProgress) => void,
  ) {}

  /**
   * INVALID indexes that no pending step will build or drop (left by some other interrupted
   * build): briefdb's own are rebuilt in place, its leftovers (a replacement's temporary, a failed
   * REINDEX CONCURRENTLY's copy) dropped; any other index is not briefdb's and is left alone.
   */
  async repairInvalidIndexes(plans: readonly PlannedMigration[]): Promise<string[]> {
    const handled = new Set(
      plans.flatMap((p) => p.steps.flatMap((s) => (s.kind === "build-index" || s.kind === "drop-index" ? [s.index] : []))),
    );
    const invalid = (await this.db.schemaChanges.invalidIndexes()).filter(({ index }) => !handled.has(index));
    const own = invalid.length === 0 ? new Set<string>() : await ownIndexNames(this.db);
    const repaired: string[] = [];
    for (const { index } of invalid) {
      const action = invalidIndexAction(index, own, this.online.maxNameLength);
      if (action === "not-briefdb") {
        this.onProgress({ tag: "", action: `left alone: INVALID index ${index} is not one briefdb's migrations make` });
        this.foreign.push(index);
        continue;
      }
      const leftover = action === "drop-leftover";
      this.onProgress({ tag: "", action: leftover ? `drop leftover index ${index}` : `rebuild INVALID index ${index}` });
      await this.withShortLockWait(() => this.session.exec(leftover ? this.online.dropStatement(index) : this.online.rebuildStatement(index)));
      repaired.push(index);
    }
    return repaired;
  }

  async apply(plan: PlannedMigration): Promise<void> {
    const { tag, hash } = plan.migration;
    const done = await this.finishedSteps(tag, hash, plan.steps);
    const last = plan.steps.length - 1;
    for (const [i, step] of plan.steps.entries()) {
      if (done.has(i)) continue;
      this.onProgress({ tag, action: describeStep(step) });
      if (step.kind === "transaction") {
        // sent at once: the brief locks of its ALTERs are held for the server's time only. A
        // migration that ends in a transaction is recorded in it: never finished-but-unrecorded
        await this.withShortLockWait(() =>
          this.session.atomically([
            ...step.statements.map((statement) => sql.raw(statement)),
            this.stepRecord(tag, hash, i, step),
            ...(i === last ? [this.migrationRecord(tag, hash)] : []),
          ]),
        );
        continue;
      }
      await this.runOnline(step, tag);
      await this.record(this.session, tag, hash, i, step);
      if (i === last) await this.recordMigration(this.session, tag, hash);
    }
    if (done.has(last) || last < 0) await this.recordMigration(this.session, tag, hash);
  }

  private async recordMigration(executor: Executor, tag: string, hash: string): Promise<void> {
    await executor.run(this.migrationRecord(tag, hash));
  }

  private migrationRecord(tag: string, hash: string): SQL {
    return sql`INSERT INTO ${sql.identifier(MIGRATIONS_TABLE)} (tag, hash, applied_at) VALUES (${tag}, ${hash}, ${Date.now()})`;
  }

  private async runOnline(step: Exclude<MigrationStep, { kind: "transaction" }>, tag: string): Promise<void> {
    if (step.kind === "build-index") return this.build(step, tag);
    if (step.kind === "validate-constraint") return this.validate(step);
    if (step.kind === "drop-index") return this.withShortLockWait(() => this.session.exec(step.statement));
    // rename: done already when an earlier run stopped after it but before its record
    const state = await this.online.indexState(this.session, step.from);
    if (state === "missing" && (await this.online.indexState(this.session, step.to)) === "valid") return;
    await this.withShortLockWait(() => this.session.exec(step.statement));
  }

  private async build(step: Extract<MigrationStep, { kind: "build-index" }>, tag: string): Promise<void> {
    const state = await this.online.indexState(this.session, step.index);
    if (state === "valid") return; // built by a run that stopped before recording it
    if (state === "invalid") {
      await this.withShortLockWait(() => this.session.exec(this.online.dropStatement(step.index)));
      this.repaired.push(step.index);
    }
    const timer = setInterval(() => void this.reportBuild(tag, step), PROGRESS_EVERY_MS);
    try {
      await this.session.setLockTimeout(0); // its lock blocks no reads or writes: wait as long as it takes
      await this.session.exec(step.statement);
    } catch (error) {
      if (error instanceof BriefdbError) throw error; // refused before it was sent (SESSION_REQUIRED): nothing to repair
      throw new BriefdbError(
        "DB_ERROR",
        `building index ${step.index} on ${step.table} failed: ${error instanceof Error ? error.message : String(error)}`,
        "the index may be left INVALID (`briefdb migrate --status` shows it); run `briefdb migrate` again to rebuild it",
        { cause: error },
      );
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * Validates the constraint as validationStatements decides from the catalog: a rerun after an
   * interruption just validates again, and one dropped by hand since is added NOT VALID first —
   * also when it is dropped while this run waits for its VALIDATE's lock.
   */
  private async validate(step: Extract<MigrationStep, { kind: "validate-constraint" }>): Promise<void> {
    try {
      const state = await this.online.constraintState(this.session, step.table, step.constraint);
      await this.runValidation(step, state).catch(async (error: unknown) => {
        // another session dropped (or added) it between the catalog read and the statement — the
        // VALIDATE may wait long for its lock: decided again once from what the catalog says now
        const now = await this.online.constraintState(this.session, step.table, step.constraint).catch(() => state);
        if (now === state) throw error;
        await this.runValidation(step, now);
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (this.online.isConstraintViolation(error)) {
        const detail = (error as { detail?: unknown }).detail;
        throw new BriefdbError(
          "INVARIANT_VIOLATED",
          `existing rows of ${step.table} violate constraint ${step.constraint}: ${typeof detail === "string" ? detail : reason}`,
          `the constraint stays in place NOT VALID (new rows are checked); fix or delete those rows, then run \`briefdb migrate\` again to validate it`,
          { cause: error },
        );
      }
      throw new BriefdbError(
        "DB_ERROR",
        `validating constraint ${step.constraint} on ${step.table} failed: ${reason}`,
        "run `briefdb migrate` again to validate it (a constraint found gone is added NOT VALID again first)",
        { cause: error },
      );
    }
  }

  private async runValidation(step: Extract<MigrationStep, { kind: "validate-constraint" }>, state: ConstraintState): Promise<void> {
    for (const { statement, lock } of validationStatements(step, state)) {
      if (lock === "brief") {
        await this.withShortLockWait(() => this.session.exec(statement));
        continue;
      }
      await this.session.setLockTimeout(0); // its locks block no reads or writes: wait as long as it takes
      await this.session.exec(statement);
    }
  }

  private async reportBuild(tag: string, step: Extract<MigrationStep, { kind: "build-index" }>): Promise<void> {
    const progress: IndexBuildProgress | null = await this.online.buildProgress(this.session.pid).catch(() => null);
    if (progress) this.onProgress({ tag, action: describeStep(step), build: progress });
  }

  /** Runs a step whose lock waits must be short: each wait is bounded, and a timed-out wait is retried. */
  private async withShortLockWait(operation: () => Promise<void>): Promise<void> {
    await this.session.setLockTimeout(SHORT_LOCK_WAIT_MS);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await operation();
        } catch (error) {
          if (attempt >= SHORT_LOCK_WAIT_ATTEMPTS || !this.online.isLockTimeout(error)) throw error;
          await sleep(200 * attempt);
        }
      }
    } finally {
      await this.session.setLockTimeout(0);
    }
  }

  /** The steps an earlier run finished; they must be the steps this plan has at those places. */
  private async finishedSteps(tag: string, hash: string, steps: readonly MigrationStep[]): Promise<Set<number>> {
    const rows = await this.session.all<{ step: number; hash: string; action: string }>(
      sql`SELECT step, hash, action FROM ${sql.identifier(STEPS_TABLE)} WHERE tag = ${tag}`,
    );
    if (rows.some((row) => row.hash !== hash)) {
      throw new BriefdbError(
        "INVARIANT_VIOLATED",
        `migration ${tag} was partly applied from a different version of its file`,
        "restore the file as it was when the migration started, finish it, then add a new migration",
      );
    }
    const stranger = rows.find((row) => {
      const planned = steps[Number(row.step)];
      return planned === undefined || describeStep(planned) !== row.action;
    });
    if (stranger) {
      throw new BriefdbError(
        "INVARIANT_VIOLATED",
        `migration ${tag} was partly applied in other steps than briefdb plans now (step ${stranger.step}: ${stranger.action})`,
        `compare ${STEPS_TABLE} with the schema, finish the migration by hand, then record it in ${MIGRATIONS_TABLE}`,
      );
    }
    return new Set(rows.map((row) => Number(row.step)));
  }

  private async record(executor: Executor, tag: string, hash: string, step: number, what: MigrationStep): Promise<void> {
    await executor.run(this.stepRecord(tag, hash, step, what));
  }

  private stepRecord(tag: string, hash: string, step: number, what: MigrationStep): SQL {
    return sql`INSERT INTO ${sql.identifier(STEPS_TABLE)} (tag, step, hash, action, finished_at) VALUES (${tag}, ${step}, ${hash}, ${describeStep(what)}, ${Date.now()})`;
  }
}
