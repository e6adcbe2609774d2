/**
 * The briefdb command-line program: global options, the commands (each loads its library code
 * only when it runs), and the mapping of usage errors to exit code 2.
 */
import type { Command, CommanderError } from "commander";
import { packageVersion } from "./db/paths.js";
import { BriefdbError } from "./errors.js";

const version = packageVersion();
const VERSION_FLAGS = new Set(["--version", "-V", "--json", "--no-color"]);

/** The whole program; loaded on demand so that `--version` never pays for commander. */
export async function buildProgram(): Promise<Command> {
  const [{ Command, Option }, { wholeNumber }, commands] = await Promise.all([
    import("commander"),
    import("./commands/parse.js"),
    Promise.all([
      import("./commands/migrate.js").then((m) => m.migrateCommand()),
      import("./commands/health.js").then((m) => m.healthCommand()),
      import("./commands/tokens.js").then((m) => m.tokensCommand()),
      import("./commands/race-test.js").then((m) => m.raceTestCommand()),
      import("./commands/seed.js").then((m) => m.seedCommand()),
      import("./commands/clear.js").then((m) => m.clearCommand()),
      import("./commands/slow-queries.js").then((m) => m.slowQueriesCommand()),
    ]),
  ]);
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
    .configureOutput({ outputError: () => {}, writeErr: () => {} })
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb migrate && briefdb health
  $ briefdb seed --local && briefdb race-test --n 1000
  $ briefdb tokens deduct user-42 5 --key req-7f3a --json
  $ briefdb slow-queries --probe
  $ briefdb --db postgres://me@localhost:5432/briefs migrate --status

Exit codes: 0 done · 1 failed or unhealthy · 2 bad usage or input · 3 refused by a rule (nothing changed)`,
    );
  for (const command of commands) {
    program.addCommand(quietErrors(command));
  }
  return program;
}

/** Usage errors are reported by main() as one line; commander must not print its own. */
function quietErrors(command: Command): Command {
  // writeErr too: a missing subcommand would otherwise dump the whole help on stderr
  command.exitOverride().configureOutput({ outputError: () => {}, writeErr: () => {} });
  for (const sub of command.commands) quietErrors(sub);
  return command;
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = argv.slice(2);
  const versionOnly = args.some((a) => a === "--version" || a === "-V") && args.every((a) => VERSION_FLAGS.has(a));
  if (versionOnly) {
    // the commonest start-up of all answers before commander is even loaded
    process.stdout.write(args.includes("--json") ? `${JSON.stringify({ ok: true, version })}\n` : `${version}\n`);
    return;
  }
  const program = await buildProgram();
  try {
    await program.parseAsync(argv as string[]);
  } catch (caught) {
    const { createUi, emitError } = await import("./render.js");
    const json = argv.includes("--json");
    const ui = createUi({ json, color: !argv.includes("--no-color") });
    if (isCommanderError(caught)) {
      if (caught.exitCode === 0) return;
      const error = usageError(caught);
      emitError(ui, error, false);
      process.exitCode = error.exitCode;
      return;
    }
    const error = caught instanceof BriefdbError ? caught : new BriefdbError("DB_ERROR", String(caught));
    emitError(ui, error, process.env.BRIEFDB_DEBUG === "1");
    process.exitCode = error.exitCode;
  }
}

function isCommanderError(value: unknown): value is CommanderError {
  return (
    value instanceof Error &&
    !(value instanceof BriefdbError) &&
    typeof (value as Partial<CommanderError>).exitCode === "number" &&
    typeof (value as Partial<CommanderError>).code === "string"
  );
}

function usageError(caught: CommanderError): BriefdbError {
  if (caught.code === "commander.help") {
    // no (sub)command given where one is needed: commander's help is silenced, say it in one line
    return new BriefdbError("USAGE", "a command is missing here", "see `briefdb --help`, or `briefdb <command> --help`");
  }
  const message = caught.message.replace(/^error:\s*/, "");
  // commander reads "-5" as an unknown option; for an amount it is a negative number
  const negative = /^unknown option '(-\d[^']*)'/.exec(message);
  if (negative && caught.code === "commander.unknownOption") {
    return new BriefdbError("INVALID_AMOUNT", `invalid amount "${negative[1]}": an amount is a positive whole number in digits`);
  }
  return new BriefdbError("USAGE", message, "see `briefdb --help`");
}
