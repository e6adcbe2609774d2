/**
 * `briefdb migrate`: apply pending migrations (index changes online on PostgreSQL unless
 * --offline), list them (--status), show their SQL (--dry-run), or measure their lock hazards
 * against the live database (--check).
 */
import { Command } from "commander";
import type { MigrateProgress, MigrateResult } from "../core/migrate/result.js";
import { invalidIndexAdvice } from "../core/migrate/plan.js";
import { migrationNotes, stepsDone, type MigrationStatus } from "../core/migrate/status.js";
import { BriefdbError } from "../errors.js";
import { escapeControls, keyValues, startSpinner, table, type Outcome, type Ui } from "../render.js";
import { action } from "./context.js";
import { checkOutcome } from "./migrate-check.js";
import { wholeNumber } from "./parse.js";

interface MigrateOptions {
  readonly status?: boolean;
  readonly dryRun?: boolean;
  readonly check?: boolean;
  readonly offline?: boolean;
  readonly maxBlockingRows?: number;
}

export function migrateCommand(): Command {
  return new Command("migrate")
    .description("apply the pending migrations of the target's dialect (safe when two run at once)")
    .option("--status", "list applied and pending migrations, INVALID indexes and NOT VALID constraints; exit 1 while any is pending")
    .option("--dry-run", "print the SQL that would run, change nothing")
    .option("--check", "each pending statement's lock, what it blocks and its table's size; exit 1 on a hazard")
    .option(
      "--max-blocking-rows <n>",
      "with --check: a statement that blocks writes on a bigger table is a hazard (default 100000)",
      wholeNumber("--max-blocking-rows", 0),
    )
    .option("--offline", "each migration in one transaction as written (index builds block writes)")
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb migrate                                   # ./briefdb.db
  $ briefdb migrate --db postgres://me@localhost/briefs
  $ briefdb migrate --status --json                   # CI gate: exit 1 while any is pending
  $ briefdb migrate --dry-run
  $ briefdb migrate --check --max-blocking-rows 50000 --json  # CI gate before a deploy
  $ briefdb migrate --offline                         # maintenance window: one transaction each`,
    )
    .action(
      action(async (ctx, options: MigrateOptions) => {
        const modes = [options.status, options.dryRun, options.check].filter(Boolean).length;
        if (modes > 1) throw new BriefdbError("USAGE", "--status and --dry-run and --check each go alone, not together");
        if (options.maxBlockingRows !== undefined && !options.check) {
          throw new BriefdbError("USAGE", "--max-blocking-rows goes with --check");
        }
        const core = await import("../core/migrate/migrate.js");
        const readOnly = options.status || options.dryRun || options.check;
        // Read-only runs never create a SQLite file: a missing one reads as empty (all pending).
        const db = await ctx.open({ create: !readOnly, missingIsEmpty: readOnly });
        if (options.status) {
          const { migrationStatus } = await import("../core/migrate/status.js");
          return statusOutcome(await migrationStatus(db), db.target.display);
        }
        if (options.check) {
          const { checkPendingMigrations } = await import("../core/migrate/hazards.js");
          const report = await checkPendingMigrations(db, {
            offline: options.offline === true,
            ...(options.maxBlockingRows === undefined ? {} : { maxBlockingRows: options.maxBlockingRows }),
          });
          return checkOutcome(report, db.target.display);
        }
        if (options.dryRun) return migrateOutcome(await core.migrate(db, { dryRun: true, offline: options.offline === true }), db.target.display);
        const spinner = await startSpinner(ctx.ui, "migrating", "migrate interrupted: finished steps are recorded; run it again to resume");
        try {
          const result = await core.migrate(db, { offline: options.offline === true, onProgress: (p) => spinner.message(progressText(p)) });
          spinner.stop("migrated");
          const { serverReached } = await import("../core/health/replication.js");
          return migrateOutcome(result, db.target.display, await serverReached(db));
        } catch (error) {
          spinner.stop("migrate failed");
          throw error;
        }
      }),
    );
}

function progressText(progress: MigrateProgress): string {
  const prefix = progress.tag === "" ? "" : `${progress.tag}: `;
  const build = progress.build;
  if (build === undefined) return `${prefix}${progress.action}`;
  const share = build.total > 0 ? ` ${Math.floor((100 * build.done) / build.total)}%` : "";
  return `${prefix}${progress.action} — ${build.phase}${share}`;
}

function statusOutcome(status: MigrationStatus, target: string): Outcome {
  const pending = status.pending.map((m) => m.tag);
  const changed = status.applied.filter((m) => m.changed).map((m) => m.tag);
  const invalid = status.invalidIndexes.map((i) => i.index);
  const foreign = status.invalidIndexes.filter((i) => !i.briefdb).map((i) => i.index);
  const error =
    invalid.length > 0
      ? new BriefdbError(
          "UNHEALTHY",
          `INVALID index(es) ${invalid.join(", ")} on ${target} (an interrupted build)`,
          foreign.length === 0
            ? "run `briefdb migrate` to rebuild them"
            : `${foreign.join(", ")}: ${invalidIndexAdvice(false)}${foreign.length < invalid.length ? "; run `briefdb migrate` for the others" : ""}`,
        )
      : pending.length > 0
      ? new BriefdbError("NOT_MIGRATED", `${pending.length} migration(s) pending on ${target}`, "run `briefdb migrate`")
      : changed.length > 0
        ? new BriefdbError(
            "INVARIANT_VIOLATED",
            `applied migration(s) ${changed.join(", ")} differ from their files on disk`,
            "never edit an applied migration: restore the file and add a new migration (npm run generate)",
          )
        : undefined;
  return {
    ok: error === undefined,
    ...(error ? { error } : {}),
    data: {
      target,
      applied: status.applied.map((m) => ({ tag: m.tag, appliedAt: m.appliedAt.toISOString(), changed: m.changed })),
      pending,
      partial: status.partial,
      invalidIndexes: status.invalidIndexes,
      notValidConstraints: status.notValidConstraints,
    },
    human: (ui) => {
      const rows = [
        ...status.applied.map((m) => [
          m.tag,
          m.changed ? ui.colors.red("applied, file changed since") : ui.colors.green("applied"),
          m.appliedAt.toISOString(),
        ]),
        ...pending.map((tag) => [tag, ui.colors.yellow(partialState(status, tag)), ""]),
        ...status.invalidIndexes.map((i) => [`index ${i.index} on ${i.table}`, ui.colors.red(i.briefdb ? "INVALID" : "INVALID, not briefdb's"), ""]),
        ...status.notValidConstraints.map((c) => [`constraint ${c.constraint} on ${c.table}`, ui.colors.yellow("NOT VALID"), ""]),
      ];
      const summary = `${target}: ${status.applied.length} applied, ${pending.length} pending${invalidLine(ui, invalid)}${notValidLine(ui, status)}`;
      const notes = migrationNotes(status);
      // a note names constraints and tables from the catalog: a newline in a name must not start a line of its own
      const lines = [...notes.pending, ...notes.notValid].map((n) => ui.colors.yellow(escapeControls(n)));
      return [table(ui, ["migration", "state", "applied at"], rows), summary, ...lines].join("\n");
    },
  };
}

function partialState(status: MigrationStatus, tag: string): string {
  const partial = status.partial.find((p) => p.tag === tag);
  return partial === undefined ? "pending" : `pending, ${stepsDone(partial)}`;
}

function invalidLine(ui: Ui, invalid: readonly string[]): string {
  return invalid.length === 0 ? "" : `, ${ui.colors.red(`${invalid.length} INVALID index(es)`)}`;
}

function notValidLine(ui: Ui, status: MigrationStatus): string {
  const count = status.notValidConstraints.length;
  return count === 0 ? "" : `, ${ui.colors.yellow(`${count} NOT VALID constraint(s)`)}`;
}

/** `server`: with several servers in the URL, the one that was reached. */
function migrateOutcome(result: MigrateResult, target: string, server: string | null = null): Outcome {
  const foreign = result.foreignInvalidIndexes ?? [];
  return {
    ok: true,
    data: {
      target,
      server,
      dryRun: result.dryRun,
      applied: result.applied,
      alreadyApplied: result.alreadyApplied,
      online: result.online,
      repairedIndexes: result.repairedIndexes,
      ...(foreign.length > 0 ? { foreignInvalidIndexes: foreign } : {}),
      ...(result.dryRun ? { pending: result.plan.map((m) => ({ tag: m.tag, statements: m.statements })) } : {}),
    },
    human: (ui) => {
      if (result.dryRun) {
        if (result.plan.length === 0) return `${target}: nothing pending; nothing would run`;
        const sqlText = result.plan.map((m) => `-- ${m.tag}\n${m.statements.map((s) => `${s.replace(/;?\s*$/, ";")}`).join("\n")}`);
        const how = result.online ? "index and constraint changes online, as above" : "each in one transaction as written";
        return `${sqlText.join("\n\n")}\n\n${ui.colors.dim(`-- dry run: ${result.plan.length} migration(s) would run on ${target} (${how}); nothing changed`)}`;
      }
      const applied = result.applied.length === 0 ? "nothing pending" : `applied ${result.applied.join(", ")}`;
      return keyValues(ui, [
        ["target", server === null ? target : `${target} (reached ${server})`],
        ["migrate", ui.colors.green(applied)],
        // said only of a run that applied something: with nothing pending nothing changed
        ...(result.applied.length > 0
          ? [["indexes", result.online ? "changed online (writes never blocked)" : "changed in the migration transaction"] as const]
          : []),
        ...(result.repairedIndexes.length > 0 ? [["repaired", `rebuilt INVALID ${result.repairedIndexes.join(", ")}`] as const] : []),
        ...(foreign.length > 0 ? [["left alone", ui.colors.yellow(`INVALID ${foreign.join(", ")}: ${invalidIndexAdvice(false)}`)] as const] : []),
        ["total", `${result.alreadyApplied + result.applied.length} applied`],
      ]);
    },
  };
}
