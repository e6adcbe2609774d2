/** `briefdb seed --local`: fill a local database with realistic, deterministic test data. */
import { Command, Option } from "commander";
import type { SeedProgress, SeedResult } from "../core/local/seed.js";
import {
  DEFAULT_SEED,
  DEFAULT_SIZES,
  MAX_ROWS_PER_TABLE,
  resolveSeedSizes,
  SCALES,
  SEED_SCALES,
  type SeedScale,
} from "../core/local/seed-sizes.js";
import { formatCount, keyValues, startProgress, table, type Outcome, type Progress } from "../render.js";
import { action } from "./context.js";
import { requireLocalTarget } from "./local-rule.js";
import { oneOf, wholeNumber } from "./parse.js";


interface SeedCommandOptions {
  readonly local?: boolean;
  readonly seed: number;
  readonly scale?: SeedScale;
  readonly users?: number;
  readonly briefs?: number;
  readonly reviews?: number;
  readonly transactions?: number;
}

const size = (flag: string) => wholeNumber(flag, 0, MAX_ROWS_PER_TABLE);
const scales = SEED_SCALES.map((name) => `${name} ${Object.values(SCALES[name]).join("/")}`).join(", ");

export function seedCommand(): Command {
  return new Command("seed")
    .description("fill a local database with realistic, deterministic test data (replaces an earlier seed)")
    .option("--local", "required: seed works on local databases only")
    .option("--seed <n>", "random seed: the same seed and sizes give the same rows", wholeNumber("--seed", 0), DEFAULT_SEED)
    .addOption(new Option("--scale <name>", `preset sizes (users/briefs/reviews/transactions): ${scales}`).argParser(oneOf("--scale", SEED_SCALES)))
    .option("--users <n>", `users (default ${DEFAULT_SIZES.users})`, size("--users"))
    .option("--briefs <n>", `briefs (default ${DEFAULT_SIZES.briefs})`, size("--briefs"))
    .option("--reviews <n>", `reviews (default ${DEFAULT_SIZES.reviews})`, size("--reviews"))
    .option("--transactions <n>", `ledger rows, opening credits included (default ${DEFAULT_SIZES.transactions})`, size("--transactions"))
    .addHelpText(
      "after",
      `
Seeded rows have ids starting with "seed-": re-seeding replaces them, \`briefdb clear --local\` removes them,
and rows the app wrote are left alone unless they hang on a seeded row (see \`briefdb clear --help\`).
Pending migrations are applied first; the whole seed is one transaction.

Examples:
  $ briefdb seed --local                              # ./briefdb.db, default sizes, seed ${DEFAULT_SEED}
  $ briefdb seed --local --seed 42 --users 10 --briefs 50
  $ briefdb seed --local --scale large                # about a million rows
  $ briefdb --db postgres://me@localhost/briefs seed --local --json`,
    )
    .action(
      action(async (ctx, options: SeedCommandOptions) => {
        requireLocalTarget(ctx, "seed", options.local);
        const sizes = resolveSeedSizes(options);
        const { seedTestData } = await import("../core/local/seed.js");
        const db = await ctx.open({ create: true });
        const progress = await startProgress(ctx.ui, "seed interrupted: its transaction was rolled back");
        try {
          const result = await seedTestData(db, { ...sizes, seed: options.seed, onProgress: (p) => showProgress(progress, p) });
          progress.stop(`seeded ${formatCount(result.rows)} rows`);
          return seedOutcome(result, db.target.display);
        } catch (error) {
          progress.fail("seed failed");
          throw error;
        }
      }),
    );
}

function showProgress(progress: Progress, event: SeedProgress): void {
  if (event.phase === "replacing") progress.update(0, event.rowsTotal, "removing the earlier seed");
  else progress.update(event.rowsDone, event.rowsTotal, `${event.table} ${formatCount(event.done)}/${formatCount(event.total)}`);
}

function seedOutcome(result: SeedResult, target: string): Outcome {
  const replacedRows = Object.values(result.replaced.counts).reduce((sum, n) => sum + n, 0);
  return {
    ok: true,
    data: {
      target,
      seed: result.seed,
      sizes: result.sizes,
      migrated: result.migrated,
      counts: result.counts,
      replaced: result.replaced.counts,
      rows: result.rows,
      durationMs: result.durationMs,
    },
    human: (ui) => {
      const migrated = result.migrated.length === 0 ? "up to date" : ui.colors.green(`applied ${result.migrated.join(", ")} first`);
      const rows = Object.entries(result.counts).map(([name, count]) => [name, formatCount(count)]);
      return [
        keyValues(ui, [
          ["target", target],
          ["migrations", migrated],
          ["seed", `${result.seed} (the same seed and sizes give the same rows)`],
          ["replaced", replacedRows === 0 ? "nothing (no earlier seed)" : `${formatCount(replacedRows)} rows of an earlier seed`],
        ]),
        table(ui, ["table", "rows seeded"], [...rows, [ui.colors.bold("total"), formatCount(result.rows)]]),
        ui.colors.green(`seeded ${formatCount(result.rows)} rows in ${(result.durationMs / 1000).toFixed(1)} s`),
      ].join("\n");
    },
  };
}
