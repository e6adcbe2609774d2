/**
 * `migrate --check`: for each pending statement, the lock it takes as briefdb will apply it, what
 * that lock blocks, and the size of the table it locks as the live database reports it. A
 * statement that blocks writes on a table above the threshold is a hazard: CI can stop the
 * deploy before the outage. Online, the statements the runner adds are listed too, as --dry-run
 * shows them: a replaced index's RENAME after its build, the DROP INDEX CONCURRENTLY of an INVALID
 * index a killed build left before the build that replaces it, and a constraint's VALIDATE step
 * after the migration's statements.
 */
import type { BriefDatabase } from "../../db/database.js";
import type { LockHazard, StatementKind, StatementShape, TableSize } from "../../db/schema-changes.js";
import { pendingValidation, planPendingMigrations, type PlannedMigration } from "./plan.js";
import { finishedStepNumbers, pendingMigrations } from "./records.js";

/** About 0.1 s of blocked writes for an index build here; smaller tables are not worth a stop. */
export const DEFAULT_MAX_BLOCKING_ROWS = 100_000;

export interface StatementHazard extends LockHazard {
  readonly tag: string;
  readonly statement: string;
  readonly kind: StatementKind;
  /** The table it locks (null when the parser names none). */
  readonly table: string | null;
  /** The table is created earlier in this run, so nobody uses it yet. */
  readonly newTable: boolean;
  readonly rows: number | null;
  readonly rowsEstimated: boolean;
  readonly bytes: number | null;
  /** briefdb applies it online (CONCURRENTLY, NOT VALID then VALIDATE), not as written. */
  readonly online: boolean;
  /** It blocks writes on a table above the threshold (or of unknown size). */
  readonly hazard: boolean;
}

export interface HazardReport {
  readonly offline: boolean;
  readonly maxBlockingRows: number;
  readonly statements: readonly StatementHazard[];
  readonly hazards: number;
}

export async function checkPendingMigrations(
  db: BriefDatabase,
  options: { offline?: boolean; maxBlockingRows?: number } = {},
): Promise<HazardReport> {
  const maxBlockingRows = options.maxBlockingRows ?? DEFAULT_MAX_BLOCKING_ROWS;
  const offline = options.offline === true;
  const online = offline ? null : db.schemaChanges.online;
  const pending = await pendingMigrations(db);
  const invalid = online === null ? new Set<string>() : new Set((await db.schemaChanges.invalidIndexes()).map((i) => i.index));
  const plans = await planPendingMigrations(db.schemaChanges, pending, online);
  // online, the steps an interrupted run finished do not run again: nothing of theirs to judge
  const finished = online === null ? new Map<string, Set<number>>() : await finishedStepNumbers(db, pending);
  const sizes = new Map<string, TableSize | null>();
  const sizeOf = async (table: string) => {
    if (!sizes.has(table)) sizes.set(table, await db.schemaChanges.tableSize(table));
    return sizes.get(table) ?? null;
  };
  const newTables = new Set<string>();
  const measured: Measured[] = [];
  const measure = async (tag: string, shape: StatementShape, applyOnline: boolean, transaction: string | null) => {
    const table = shape.kind === "drop-index" && shape.index !== null ? await db.schemaChanges.tableOfIndex(shape.index) : shape.table;
    const isNew = table !== null && newTables.has(table);
    if (shape.kind === "create-table" && table) newTables.add(table);
    const size = table === null || isNew || shape.kind === "create-table" ? null : await sizeOf(table);
    measured.push({
      tag,
      statement: shape.text,
      kind: shape.kind,
      table,
      newTable: isNew || shape.kind === "create-table",
      rows: table === null ? null : size === null ? 0 : size.rows,
      rowsEstimated: size?.estimated ?? false,
      bytes: size?.bytes ?? null,
      online: applyOnline,
      transaction,
      ...db.schemaChanges.lockOf(shape, applyOnline),
    });
  };
  /** A replaced index's rename (step `at`, when that is one still to run), on the table of its build. */
  const measureRename = async (plan: PlannedMigration, at: number, table: string) => {
    const step = plan.steps[at];
    if (step?.kind !== "rename-index" || (finished.get(plan.migration.tag) ?? new Set<number>()).has(at)) return;
    for (const rename of await db.schemaChanges.describe([step.statement])) await measure(plan.migration.tag, { ...rename, table }, true, null);
  };
  for (const plan of plans) {
    const { tag } = plan.migration;
    const done = finished.get(tag) ?? new Set<number>();
    for (const [i, shape] of plan.shapes.entries()) {
      if (done.has(plan.stepOf[i] ?? -1)) continue;
      // as written, every pending migration runs in one transaction; online, each transaction step is one
      const stepAt = plan.stepOf[i] ?? -1;
      const step = plan.steps[stepAt];
      const transaction = online === null ? "all" : step?.kind === "transaction" ? `${tag}#${stepAt}` : null;
      if (online !== null && step?.kind === "build-index" && invalid.has(step.index)) {
        // a killed build's INVALID index goes first (as the runner and --dry-run do)
        for (const drop of await db.schemaChanges.describe([online.dropStatement(step.index)])) await measure(tag, drop, true, null);
      }
      await measure(tag, shape, plan.online[i] === true, transaction);
      if (step?.kind === "build-index") await measureRename(plan, stepAt + 2, step.table);
    }
    // a replacement whose build an interrupted run finished still has its rename to run
    for (const [i, step] of plan.steps.entries()) {
      const built = plan.steps[i - 2];
      if (step.kind === "rename-index" && done.has(i - 2) && built?.kind === "build-index") await measureRename(plan, i, built.table);
    }
    // as the rerun runs them: a constraint dropped by hand since is added again before its validation
    const validations: string[] = [];
    for (const [i, step] of plan.steps.entries()) {
      if (step.kind !== "validate-constraint" || done.has(i) || online === null) continue;
      validations.push(...(await pendingValidation(db, online, step, done)).map((v) => v.statement));
    }
    for (const shape of await db.schemaChanges.describe(validations)) await measure(tag, shape, true, null);
  }
  // online, a brief lock waits at most the runner's lock timeout, and is retried: not a hazard
  const statements = judge(measured, maxBlockingRows, online !== null);
  return { offline, maxBlockingRows, statements, hazards: statements.filter((s) => s.hazard).length };
}

type Measured = Omit<StatementHazard, "hazard"> & { readonly transaction: string | null };

/**
 * Which statements are hazards. A lock taken in a transaction is held until it commits: a brief
 * one is held as long as any later statement of the same transaction that scans or builds on a
 * big table (the ADD COLUMN before a foreign key's validation, as written), and is judged so.
 */
function judge(measured: readonly Measured[], maxBlockingRows: number, briefLocksBounded: boolean): StatementHazard[] {
  const big = (rows: number | null) => rows === null || rows > maxBlockingRows;
  return measured.map(({ transaction, ...statement }, i) => {
    const heldThroughScan =
      statement.holds === "brief" &&
      transaction !== null &&
      measured.slice(i + 1).some((later) => later.transaction === transaction && later.holds !== "brief" && !later.newTable && big(later.rows));
    if (statement.blocksWrites && heldThroughScan) return { ...statement, holds: "until the transaction ends", hazard: true };
    const bounded = briefLocksBounded && statement.holds === "brief";
    return { ...statement, hazard: statement.table !== null && statement.blocksWrites && !bounded && big(statement.rows) };
  });
}
