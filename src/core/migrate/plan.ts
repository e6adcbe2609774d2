/**
 * How briefdb applies each pending migration: which statements run as written inside a
 * transaction, and which schema changes run online (without blocking writes) where the dialect
 * can make them that way. The plan is made from what the parser says each statement is; the
 * migration files themselves are never changed.
 *
 * - CREATE [UNIQUE] INDEX on a table that exists before this run → built CONCURRENTLY, outside
 *   any transaction (what comes before it commits first, what follows resumes after it).
 * - DROP INDEX of an index that exists before this run → DROP INDEX CONCURRENTLY.
 * - DROP INDEX x … CREATE INDEX x in one migration (a replaced index) → the new one is built
 *   under a temporary name while the old one keeps serving queries, then the old one is dropped
 *   concurrently and the new one renamed into place.
 * - ADD CONSTRAINT … FOREIGN KEY or CHECK on a table that exists before this run, written without
 *   NOT VALID → added NOT VALID in its transaction (a catalog change: no scan under the lock that
 *   blocks writes), then validated in a step of its own (VALIDATE CONSTRAINT, which lets writes go
 *   on) once everything else in the migration has run. New rows are checked from the moment the
 *   NOT VALID constraint commits, so only rows older than it are left to validate.
 * - Anything on a table created in this run needs nothing of that: it runs in the transaction.
 */
import type { Executor } from "../../db/database.js";
import type { ConstraintState, OnlineSchemaChanges, SchemaChanges, StatementShape } from "../../db/schema-changes.js";
import type { Migration } from "./records.js";

export type MigrationStep =
  | { readonly kind: "transaction"; readonly statements: readonly string[] }
  | { readonly kind: "build-index"; readonly index: string; readonly table: string; readonly statement: string }
  | { readonly kind: "drop-index"; readonly index: string; readonly statement: string }
  | { readonly kind: "rename-index"; readonly from: string; readonly to: string; readonly statement: string }
  | {
      readonly kind: "validate-constraint";
      readonly constraint: string;
      readonly table: string;
      readonly statement: string;
      /** Adds it NOT VALID again: for a rerun that finds it gone (dropped by hand after it failed). */
      readonly add: string;
      /** The transaction step that adds it NOT VALID. */
      readonly addedBy: number;
    };

export interface PlannedMigration {
  readonly migration: Migration;
  readonly shapes: readonly StatementShape[];
  /** Per statement: whether it is applied online (true) or as written in a transaction. */
  readonly online: readonly boolean[];
  /** Per statement: the step that runs it (for a constraint added NOT VALID: the adding transaction). */
  readonly stepOf: readonly number[];
  readonly steps: readonly MigrationStep[];
}

const TEMPORARY_SUFFIX = "_briefdb_new";

/** Reads the pending migrations' statements with the dialect's parser, then plans them (see planMigrations). */
export async function planPendingMigrations(
  schemaChanges: SchemaChanges,
  pending: readonly Migration[],
  online: OnlineSchemaChanges | null,
): Promise<PlannedMigration[]> {
  const withShapes = await Promise.all(pending.map(async (migration) => ({ migration, shapes: await schemaChanges.describe(migration.statements) })));
  return planMigrations(withShapes, online);
}

/** Plans the pending migrations in order; `online` null (or --offline) keeps every statement as written. */
export function planMigrations(
  pending: ReadonlyArray<{ readonly migration: Migration; readonly shapes: readonly StatementShape[] }>,
  online: OnlineSchemaChanges | null,
): PlannedMigration[] {
  const newTables = new Set<string>();
  const newIndexes = new Set<string>();
  return pending.map(({ migration, shapes }) => planOne(migration, shapes, online, newTables, newIndexes));
}

function planOne(
  migration: Migration,
  shapes: readonly StatementShape[],
  online: OnlineSchemaChanges | null,
  newTables: Set<string>,
  newIndexes: Set<string>,
): PlannedMigration {
  const steps: MigrationStep[] = [];
  const onlineFlags: boolean[] = [];
  const stepOf: number[] = [];
  const validations: MigrationStep[] = [];
  /** Indexes dropped to be recreated later in this migration → the position of their DROP. */
  const replacing = new Map<string, number>();
  let batch: string[] = [];
  const flush = () => {
    if (batch.length > 0) steps.push({ kind: "transaction", statements: batch });
    batch = [];
  };
  shapes.forEach((shape, i) => {
    const goesOnline = online !== null && isOnlineCandidate(shape, newTables, newIndexes);
    onlineFlags.push(goesOnline);
    if (!goesOnline || online === null) {
      if (shape.kind === "create-table" && shape.table) newTables.add(shape.table);
      if (shape.kind === "create-index" && shape.index) newIndexes.add(shape.index);
      batch.push(shape.text);
      stepOf.push(steps.length);
      return;
    }
    if (shape.kind === "add-foreign-key" || shape.kind === "add-check") {
      const table = shape.table as string;
      const constraint = shape.constraint as string;
      const add = online.notValidStatement(shape);
      batch.push(add);
      stepOf.push(steps.length);
      validations.push({
        kind: "validate-constraint",
        constraint,
        table,
        statement: online.validateStatement(table, constraint),
        add,
        addedBy: steps.length,
      });
      return;
    }
    const index = shape.index as string;
    if (shape.kind === "drop-index") {
      // recreated later in this migration: the old one serves queries until the new one is built
      if (recreatedLater(shapes, i, index)) {
        replacing.set(index, i);
        stepOf.push(-1); // set when the replacement is planned
        return;
      }
      flush();
      stepOf.push(steps.length);
      steps.push({ kind: "drop-index", index, statement: online.dropStatement(index) });
      return;
    }
    flush();
    const table = shape.table as string;
    stepOf.push(steps.length);
    const dropAt = replacing.get(index);
    if (dropAt === undefined) {
      steps.push({ kind: "build-index", index, table, statement: online.buildStatement(shape) });
      return;
    }
    replacing.delete(index);
    stepOf[dropAt] = steps.length + 1;
    const temporary = temporaryName(index, online.maxNameLength);
    steps.push(
      { kind: "build-index", index: temporary, table, statement: online.buildStatement(shape, temporary) },
      { kind: "drop-index", index, statement: online.dropStatement(index) },
      { kind: "rename-index", from: temporary, to: index, statement: online.renameStatement(temporary, index) },
    );
  });
  flush();
  steps.push(...validations);
  return { migration, shapes, online: onlineFlags, stepOf, steps };
}

/** A statement of a validation step, and whether its lock must be brief (waited for a bounded time) or may be waited for. */
export interface ValidationStatement {
  readonly statement: string;
  readonly lock: "brief" | "wait";
}

/**
 * What a validate-constraint step runs, decided from the state its constraint is in when the step
 * starts: one that is gone (dropped by hand after its validation failed) is added NOT VALID again,
 * as the migration's transaction added it — a brief lock —, then validated (a lock that lets
 * writes go on). VALIDATE of one already valid does nothing. The runner and the dry run both ask
 * this, so that `--dry-run` and `--check` show what the rerun runs.
 */
export function validationStatements(
  step: Extract<MigrationStep, { kind: "validate-constraint" }>,
  state: ConstraintState,
): ValidationStatement[] {
  const validate: ValidationStatement = { statement: step.statement, lock: "wait" };
  return state === "missing" ? [{ statement: step.add, lock: "brief" }, validate] : [validate];
}

/**
 * A named index change written without CONCURRENTLY, or a named constraint written without NOT
 * VALID, on a table or index older than this run.
 */
function isOnlineCandidate(shape: StatementShape, newTables: ReadonlySet<string>, newIndexes: ReadonlySet<string>): boolean {
  if (shape.kind === "add-foreign-key" || shape.kind === "add-check") {
    return !shape.notValid && shape.constraint !== null && shape.table !== null && !newTables.has(shape.table);
  }
  if (shape.concurrent || shape.index === null) return false;
  if (shape.kind === "create-index") return shape.table !== null && !newTables.has(shape.table);
  if (shape.kind === "drop-index") return !newIndexes.has(shape.index);
  return false;
}

function recreatedLater(shapes: readonly StatementShape[], from: number, index: string): boolean {
  return shapes.slice(from + 1).some((s) => s.kind === "create-index" && s.index === index && !s.concurrent);
}

/**
 * What `migrate` does with an INVALID index that no pending step builds or drops: a temporary
 * of its own (an interrupted replacement) or the leftover of its own REINDEX CONCURRENTLY is
 * dropped, one of the indexes its migrations create is rebuilt, and any other index is not
 * briefdb's — it is left alone (reported, never dropped or rebuilt behind its owner's back).
 */
export function invalidIndexAction(
  index: string,
  ownIndexes: ReadonlySet<string>,
  maxNameLength: number,
): "drop-leftover" | "rebuild" | "not-briefdb" {
  if (ownIndexes.has(index)) return "rebuild";
  // the server cuts a long name to fit, so a leftover may carry only the start of the name
  const named = (base: string, full: string) => base === full || (index.length === maxNameLength && full.startsWith(base));
  const ownOrTemporary = [...ownIndexes].flatMap((own) => [own, temporaryName(own, maxNameLength)]);
  if (index.endsWith(TEMPORARY_SUFFIX)) {
    const base = index.slice(0, -TEMPORARY_SUFFIX.length);
    if ([...ownIndexes].some((own) => named(base, own))) return "drop-leftover";
  }
  const reindexed = /^(.*)_cc(new|old)\d*$/.exec(index)?.[1];
  if (reindexed !== undefined && ownOrTemporary.some((own) => named(reindexed, own))) return "drop-leftover";
  return "not-briefdb";
}

function temporaryName(index: string, maxNameLength: number): string {
  return `${index.slice(0, maxNameLength - TEMPORARY_SUFFIX.length)}${TEMPORARY_SUFFIX}`;
}

/** What to do about an INVALID index: `migrate` repairs briefdb's own and leaves anyone else's alone. */
export function invalidIndexAdvice(briefdb: boolean): string {
  return briefdb
    ? "run `briefdb migrate`"
    : "not one briefdb's migrations make, so `briefdb migrate` leaves it: REINDEX INDEX CONCURRENTLY or DROP INDEX CONCURRENTLY it yourself";
}

/** What a step did, in the words the migration record keeps. */
export function describeStep(step: MigrationStep): string {
  switch (step.kind) {
    case "transaction":
      return `${step.statements.length} statement(s) in a transaction`;
    case "build-index":
      return `build index ${step.index} on ${step.table} concurrently`;
    case "drop-index":
      return `drop index ${step.index} concurrently`;
    case "rename-index":
      return `rename index ${step.from} to ${step.to}`;
    case "validate-constraint":
      return `validate constraint ${step.constraint} on ${step.table}`;
  }
}

/**
 * The statements a pending validation step will run, decided as the runner decides
 * (validationStatements) from the state its constraint will be in when the step starts: NOT VALID
 * when this run's own transaction adds it, else what the catalog says now.
 */
export async function pendingValidation(
  executor: Executor,
  online: OnlineSchemaChanges,
  step: Extract<MigrationStep, { kind: "validate-constraint" }>,
  finished: ReadonlySet<number>,
): Promise<ValidationStatement[]> {
  const state = finished.has(step.addedBy) ? await online.constraintState(executor, step.table, step.constraint) : "not-valid";
  return validationStatements(step, state);
}
