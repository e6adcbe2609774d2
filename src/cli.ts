/**
 * The briefdb command-line program: global options, the commands (each loads its library code
 * only when it runs), and the mapping of usage errors to exit code 2.
 */
import { Command, CommanderError, Option } from "commander";
import { createRequire } from "node:module";
import { clearCommand } from "./commands/clear.js";
import { healthCommand } from "./commands/health.js";
import { migrateCommand } from "./commands/migrate.js";
import { wholeNumber } from "./commands/parse.js";
import { seedCommand } from "./commands/seed.js";
import { BriefdbError } from "./errors.js";
import { createUi, emitError } from "./render.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

export function buildProgram(): Command {
  const program = new Command("briefdb")
    .description("keeps the briefs app's database fast and correct on SQLite and PostgreSQL")
    .version(version, "-V, --version")
    .option("--db <url>", "database URL (default: $DATABASE_URL, else file:./briefdb.db)")
    .option("--json", "print exactly one JSON object on stdout", false)
    .option("--no-color", "no colour (also NO_COLOR)")
    .option("--timeout <ms>", "PostgreSQL connect timeout in ms", wholeNumber("--timeout", 1, 600_000), 5000)
    .addOption(new Option("--pool-size <n>", "PostgreSQL connections").argParser(wholeNumber("--pool-size", 1, 1000)))
    .option("--no-prepare", "no named prepared statements (PgBouncer in transaction mode)")
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb migrate && briefdb health
  $ briefdb --db postgres://me@localhost:5432/briefs migrate --status
  $ briefdb health --json | jq .latencyMs

Exit codes: 0 done · 1 failed or unhealthy · 2 bad usage or input · 3 refused by a rule (nothing changed)`,
    );
  for (const command of [migrateCommand(), healthCommand(), seedCommand(), clearCommand()]) {
    program.addCommand(command.exitOverride().configureOutput({ outputError: () => {} }));
  }
  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[]);
  } catch (caught) {
    const json = argv.includes("--json");
    const ui = createUi({ json, color: !argv.includes("--no-color") });
    if (caught instanceof CommanderError) {
      if (caught.exitCode === 0) return;
      const message = caught.message.replace(/^error:\s*/, "");
      emitError(ui, new BriefdbError("USAGE", message, "see `briefdb --help`"), false);
      process.exitCode = 2;
      return;
    }
    const error = caught instanceof BriefdbError ? caught : new BriefdbError("DB_ERROR", String(caught));
    emitError(ui, error, process.env.BRIEFDB_DEBUG === "1");
    process.exitCode = error.exitCode;
  }
}
