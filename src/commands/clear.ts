/** `briefdb clear --local`: remove the seeded rows (or, with --all, every app row) from a local database. */
import { Command } from "commander";
import type { ClearProgress, ClearResult } from "../core/local/clear.js";
import { COMPACT_WORTH_BYTES, compactDatabase, worthCompacting, type CompactResult } from "../core/local/compact.js";
import type { BriefDatabase } from "../db/database.js";
import { BriefdbError } from "../errors.js";
import { canPrompt, confirmOnTty, formatBytes, formatCount, keyValues, startSpinner, table, type Outcome } from "../render.js";
import { action, type Context } from "./context.js";
import { requireLocalTarget } from "./local-rule.js";

interface ClearCommandOptions {
  readonly local?: boolean;
  readonly all?: boolean;
  readonly yes?: boolean;
  readonly compact?: boolean;
}

export function clearCommand(): Command {
  return new Command("clear")
    .description("remove the rows `seed` made, and only them, from a local database (--all: every app row)")
    .option("--local", "required: clear works on local databases only")
    .option("--all", "empty every app table (users, models, briefs, reviews, token_transactions, token_holds, query_log)")
    .option("--yes", "do not ask for confirmation (needed with --json and when not on a terminal)")
    .option("--compact", "then give the freed space back to the disk (SQLite: VACUUM; PostgreSQL: VACUUM of the app tables); on a terminal, clear offers it when there is enough to free")
    .addHelpText(
      "after",
      `
Removes the rows whose id starts with "seed-" and the app rows that cannot outlive them (their ledger rows,
reviews and briefs); an app user's ledger row that names a removed brief stays, detached from it, so every
remaining balance still equals its ledger. The migrations table is never touched.

Examples:
  $ briefdb clear --local                             # asks first
  $ briefdb clear --local --yes --json                # scripts and CI
  $ briefdb clear --local --all --yes
  $ briefdb clear --local --all --yes --compact       # and shrink the file, saying how much it freed`,
    )
    .action(
      action(async (ctx, options: ClearCommandOptions) => {
        requireLocalTarget(ctx, "clear", options.local);
        const all = options.all === true;
        if (options.yes !== true) await confirm(ctx, all);
        const { clearTestData } = await import("../core/local/clear.js");
        const db = await ctx.openMigrated();
        const spinner = await startSpinner(
          ctx.ui,
          all ? "removing every app row" : "removing the seeded rows",
          "clear interrupted: its transaction was rolled back; nothing changed",
        );
        try {
          const result = await clearTestData(db, { all, onProgress: (step) => spinner.show(describeStep(step)) });
          spinner.stop(`removed ${formatCount(totalOf(result))} rows`);
          return clearOutcome(result, db.target.display, await compactAfter(ctx, db, options));
        } catch (error) {
          spinner.fail("clear failed; nothing changed");
          throw error;
        }
      }),
    );
}

/** Asks on a terminal; anywhere else --yes is the only way through. Either refusal changes nothing. */
async function confirm(ctx: Context, all: boolean): Promise<void> {
  const what = all ? "every row of every app table" : "every seeded row";
  if (!canPrompt(ctx.ui)) {
    throw new BriefdbError(
      "CONFIRMATION_REQUIRED",
      `clear would remove ${what} from ${ctx.target.display} and needs confirmation; nothing changed`,
      "add --yes (needed with --json and when not on a terminal)",
    );
  }
  const answer = await confirmOnTty(`Remove ${what} from ${ctx.target.display}?`);
  if (answer === "yes") return;
  // Ctrl-C is an interruption (130); a plain "no", or the input ending unanswered (Ctrl-D), is a
  // refusal like a missing --yes (3)
  if (answer === "cancelled") throw new BriefdbError("CANCELLED", "clear cancelled; nothing changed");
  if (answer === "eof") throw new BriefdbError("CONFIRMATION_REQUIRED", "clear not confirmed: the input ended with no answer; nothing changed");
  throw new BriefdbError("CONFIRMATION_REQUIRED", "clear not confirmed; nothing changed");
}

interface Compaction {
  readonly compacted: CompactResult | null;
  /** Free space left inside the database when it was not compacted (undefined: not known). */
  readonly freeBytes: number | undefined;
}

/**
 * With --compact, compacts; on a terminal without --yes, offers to when the clear left enough free
 * space; otherwise leaves it and the outcome says how much is free. The clear is committed by now:
 * declining (or Ctrl-C, or the input ending) only skips the compaction.
 */
async function compactAfter(ctx: Context, db: BriefDatabase, options: ClearCommandOptions): Promise<Compaction> {
  const storage = await db.storage();
  let compact = options.compact === true;
  if (!compact && options.yes !== true && canPrompt(ctx.ui) && worthCompacting(storage)) {
    const freed = formatBytes(storage.freeBytes ?? 0);
    compact = (await confirmOnTty(`Compact ${ctx.target.display} now (VACUUM gives about ${freed} back to the disk)?`)) === "yes";
  }
  if (!compact) return { compacted: null, freeBytes: storage.freeBytes };
  const spinner = await startSpinner(ctx.ui, "compacting", "compaction interrupted: the clear was already committed; the database is as it was before compacting");
  try {
    const compacted = await compactDatabase(db, storage);
    spinner.stop(`compacted: ${formatBytes(compacted.freedBytes)} freed`);
    return { compacted, freeBytes: undefined };
  } catch (error) {
    spinner.fail("compaction failed; the clear was already committed");
    throw error;
  }
}

function describeStep(step: ClearProgress): string {
  const detached = step.table === "token_holds" ? "app holds" : "app ledger rows";
  const what = step.action === "detach" ? `detaching ${detached} from removed briefs` : `removing ${step.table}`;
  return `${what} (${step.step}/${step.steps})`;
}

function totalOf(result: ClearResult): number {
  return Object.values(result.counts).reduce((sum, n) => sum + n, 0);
}

function clearOutcome(result: ClearResult, target: string, compaction: Compaction): Outcome {
  const total = totalOf(result);
  const { compacted, freeBytes } = compaction;
  return {
    ok: true,
    data: {
      target,
      all: result.all,
      counts: result.counts,
      detachedLedgerRows: result.detachedLedgerRows,
      compacted,
      ...(compacted === null && freeBytes !== undefined ? { freeBytes } : {}),
    },
    human: (ui) => {
      const rows = Object.entries(result.counts).map(([name, count]) => [name, formatCount(count)]);
      const pairs: Array<[string, string]> = [
        ["target", target],
        ["removed", result.all ? "every row of every app table" : "the seeded rows and the app rows that depended on them"],
      ];
      if (result.detachedLedgerRows > 0) {
        pairs.push(["detached", `${formatCount(result.detachedLedgerRows)} app ledger rows from removed briefs (balances unchanged)`]);
      }
      if (compacted !== null) {
        pairs.push(["compacted", `${formatBytes(compacted.beforeBytes)} → ${formatBytes(compacted.afterBytes)} (${formatBytes(compacted.freedBytes)} freed)`]);
      } else if (freeBytes !== undefined && freeBytes >= COMPACT_WORTH_BYTES) {
        pairs.push(["free space", `${formatBytes(freeBytes)} inside the file: clear again with --compact (or VACUUM) to give it back to the disk`]);
      }
      return [
        keyValues(ui, pairs),
        table(ui, ["table", "rows removed"], [...rows, [ui.colors.bold("total"), formatCount(total)]]),
      ].join("\n");
    },
  };
}
