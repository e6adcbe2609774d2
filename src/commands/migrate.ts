/** `briefdb migrate`: apply pending migrations, list them (--status), or show their SQL (--dry-run). */
import { Command } from "commander";
import type { MigrateResult, MigrationStatus } from "../core/migrations.js";
import { BriefdbError } from "../errors.js";
import { keyValues, table, type Outcome } from "../render.js";
import { action } from "./context.js";

interface MigrateOptions {
  readonly status?: boolean;
  readonly dryRun?: boolean;
}

export function migrateCommand(): Command {
  return new Command("migrate")
    .description("apply the pending migrations of the target's dialect (safe when two run at once)")
    .option("--status", "list applied and pending migrations; exit 1 while any is pending")
    .option("--dry-run", "print the SQL that would run, change nothing")
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb migrate                                   # ./briefdb.db
  $ briefdb migrate --db postgres://me@localhost/briefs
  $ briefdb migrate --status --json                   # CI gate: exit 1 while any is pending
  $ briefdb migrate --dry-run`,
    )
    .action(
      action(async (ctx, options: MigrateOptions) => {
        if (options.status && options.dryRun) throw new BriefdbError("USAGE", "--status and --dry-run go alone, not together");
        const core = await import("../core/migrations.js");
        const readOnly = options.status || options.dryRun;
        // Read-only runs never create a SQLite file: a missing one reads as empty (all pending).
        const db = await ctx.open({ create: !readOnly, missingIsEmpty: readOnly });
        if (options.status) return statusOutcome(await core.migrationStatus(db), db.target.display);
        const result = await core.migrate(db, { dryRun: options.dryRun === true });
        return migrateOutcome(result, db.target.display);
      }),
    );
}


function statusOutcome(status: MigrationStatus, target: string): Outcome {
  const pending = status.pending.map((m) => m.tag);
  const changed = status.applied.filter((m) => m.changed).map((m) => m.tag);
  const error =
    pending.length > 0
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
    },
    human: (ui) => {
      const rows = [
        ...status.applied.map((m) => [
          m.tag,
          m.changed ? ui.colors.red("applied, file changed since") : ui.colors.green("applied"),
          m.appliedAt.toISOString(),
        ]),
        ...pending.map((tag) => [tag, ui.colors.yellow("pending"), ""]),
      ];
      return `${table(ui, ["migration", "state", "applied at"], rows)}\n${target}: ${status.applied.length} applied, ${pending.length} pending`;
    },
  };
}

function migrateOutcome(result: MigrateResult, target: string): Outcome {
  return {
    ok: true,
    data: {
      target,
      dryRun: result.dryRun,
      applied: result.applied,
      alreadyApplied: result.alreadyApplied,
      ...(result.dryRun ? { pending: result.plan.map((m) => ({ tag: m.tag, statements: m.statements })) } : {}),
    },
    human: (ui) => {
      if (result.dryRun) {
        if (result.plan.length === 0) return `${target}: nothing pending; nothing would run`;
        const sqlText = result.plan.map((m) => `-- ${m.tag}\n${m.statements.map((s) => `${s.replace(/;?\s*$/, ";")}`).join("\n")}`);
        return `${sqlText.join("\n\n")}\n\n${ui.colors.dim(`-- dry run: ${result.plan.length} migration(s) would run on ${target}; nothing changed`)}`;
      }
      const applied = result.applied.length === 0 ? "nothing pending" : `applied ${result.applied.join(", ")}`;
      return keyValues(ui, [
        ["target", target],
        ["migrate", ui.colors.green(applied)],
        ["total", `${result.alreadyApplied + result.applied.length} applied`],
      ]);
    },
  };
}
