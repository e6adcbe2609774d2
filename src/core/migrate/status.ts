/**
 * Where the target's schema stands against its migrations: applied (and whether a file was edited
 * since), pending, left part-way by an interrupted online run, and what the catalog says was left
 * behind — indexes INVALID after an interrupted build, constraints NOT VALID after a failed or
 * interrupted validation (or made so by hand). `migrate --status` and `health` both read this, and
 * both say it in the sentences made here.
 */
import type { BriefDatabase } from "../../db/database.js";
import type { InvalidIndex, NotValidConstraint } from "../../db/schema-changes.js";
import { invalidIndexAction, planPendingMigrations, type PlannedMigration } from "./plan.js";
import { appliedAndPending, ownIndexNames, partialMigrations, type AppliedMigration, type Migration, type PartialMigration } from "./records.js";

/** An INVALID index, and whether it is briefdb's own (one its migrations make, or their temporaries). */
export interface InvalidIndexStatus extends InvalidIndex {
  readonly briefdb: boolean;
}

/** A pending migration an interrupted online run left part-way, and how many steps it has in all. */
export interface PartialMigrationStatus extends PartialMigration {
  readonly steps: number;
}

/** A constraint NOT VALID in the catalog, and what validates it. */
export interface NotValidConstraintStatus extends NotValidConstraint {
  /** The pending migration that validates it (`briefdb migrate`); null when none does. */
  readonly migration: string | null;
  /** The statement that validates it by hand, without blocking writes. */
  readonly validateStatement: string;
}

export interface MigrationStatus {
  readonly applied: readonly AppliedMigration[];
  readonly pending: readonly Migration[];
  readonly partial: readonly PartialMigrationStatus[];
  /** Indexes left INVALID by an interrupted or failed build: `migrate` rebuilds them. */
  readonly invalidIndexes: readonly InvalidIndexStatus[];
  /** Constraints on the schema's tables that existing rows were never checked against. */
  readonly notValidConstraints: readonly NotValidConstraintStatus[];
}

export async function migrationStatus(db: BriefDatabase): Promise<MigrationStatus> {
  const { applied, pending } = await appliedAndPending(db);
  const partial = await partialMigrations(db, pending);
  const invalid = await db.schemaChanges.invalidIndexes();
  const notValid = await db.schemaChanges.notValidConstraints();
  const own = invalid.length === 0 ? new Set<string>() : await ownIndexNames(db);
  const online = db.schemaChanges.online;
  const maxNameLength = online?.maxNameLength ?? Number.MAX_SAFE_INTEGER;
  // planned (every pending statement read by the parser) only when there is something to tell from it
  const plans = online !== null && (partial.length > 0 || notValid.length > 0) ? await planPendingMigrations(db.schemaChanges, pending, online) : [];
  return {
    applied,
    pending,
    partial: partial.map((p) => ({ ...p, steps: plans.find((plan) => plan.migration.tag === p.tag)?.steps.length ?? p.finished.length })),
    invalidIndexes: invalid.map((i) => ({ ...i, briefdb: invalidIndexAction(i.index, own, maxNameLength) !== "not-briefdb" })),
    // only a dialect that changes schemas online has NOT VALID
    notValidConstraints:
      online === null
        ? []
        : notValid.map((c) => ({ ...c, migration: validatedBy(plans, c), validateStatement: online.validateStatement(c.table, c.constraint) })),
  };
}

/** The pending migration that validates the constraint: a validation step of its online plan, or a VALIDATE written in it. */
function validatedBy(plans: readonly PlannedMigration[], c: NotValidConstraint): string | null {
  const plan = plans.find(
    ({ steps, shapes }) =>
      steps.some((s) => s.kind === "validate-constraint" && s.constraint === c.constraint && s.table === c.table) ||
      shapes.some((s) => s.kind === "validate-constraint" && s.constraint === c.constraint && s.table === c.table),
  );
  return plan?.migration.tag ?? null;
}

/** `2 of 3 steps done` */
export function stepsDone(partial: PartialMigrationStatus): string {
  return `${partial.finished.length} of ${partial.steps} step${partial.steps === 1 ? "" : "s"} done`;
}

/** What a NOT VALID constraint means, and what validates it. */
export function notValidAdvice(c: NotValidConstraintStatus): string {
  const what = `constraint ${c.constraint} on ${c.table} is NOT VALID (not yet checked against existing rows)`;
  return c.migration !== null
    ? `${what}: run \`briefdb migrate\` to validate it`
    : `${what}; no pending migration validates it: \`${c.validateStatement}\` checks them without blocking writes`;
}

export interface MigrationNotes {
  /** Per pending migration left part-way, its progress and the constraints it left NOT VALID; then any other constraint a pending migration validates. */
  readonly pending: readonly string[];
  /** NOT VALID constraints that no pending migration validates (left so by hand, or by another tool). */
  readonly notValid: readonly string[];
}

/**
 * The sentences `migrate --status` and `health` say about work left part-way, e.g. `0002_holds:
 * pending, 2 of 3 steps done; constraint … on token_transactions is NOT VALID (not yet checked
 * against existing rows): run \`briefdb migrate\` to validate it`.
 */
export function migrationNotes(status: MigrationStatus): MigrationNotes {
  const advice = (tag: string | null) => status.notValidConstraints.filter((c) => c.migration === tag).map(notValidAdvice);
  const partialTags = new Set(status.partial.map((p) => p.tag));
  const others = status.notValidConstraints.filter((c) => c.migration !== null && !partialTags.has(c.migration));
  return {
    pending: [
      ...status.partial.map((p) => [`${p.tag}: pending, ${stepsDone(p)}`, ...advice(p.tag)].join("; ")),
      ...others.map((c) => `${c.migration}: pending; ${notValidAdvice(c)}`),
    ],
    notValid: advice(null),
  };
}
