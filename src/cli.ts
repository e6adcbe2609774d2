/**
 * The briefdb command-line program: global options, the commands (each loads its library code
 * only when it runs), and runCli, the one place that prints an outcome or an error and decides
 * the exit code.
 */
import type { Command, CommanderError } from "commander";
import type { FailureSource } from "./core/failures.js";
import { packageVersion } from "./package-root.js";
import { BriefdbError, EXIT_CODES } from "./errors.js";
import type { Ui } from "./render.js";

const version = packageVersion();
const VERSION_FLAGS = new Set(["--version", "-V", "--json", "--no-color"]);
/** How a run ended by a signal exits: 128 + the signal's number, as a shell reports it. */
const SIGNAL_EXIT: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
/**
 * The signals a run answers. SIGHUP too (the terminal closed, an ssh session dropped): left to
 * its default it ended the process at once, while a token change it had sent went on to commit.
 */
const RUN_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

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
      import("./commands/serve.js").then((m) => m.serveCommand()),
    ]),
  ]);
  const program = new Command("briefdb")
    .description("keeps the briefs app's database fast and correct on SQLite and PostgreSQL")
    .version(version, "-V, --version")
    .option("--db <url>", "database URL (default: $DATABASE_URL, then DATABASE_URL in ./.env, else file:./briefdb.db)")
    .option("--json", "print exactly one JSON object on stdout", false)
    .option("--no-color", "no colour (also NO_COLOR)")
    .option("--timeout <ms>", "PostgreSQL connect timeout in ms; with race-test --url, each request's time limit", wholeNumber("--timeout", 1, 600_000), 5000)
    .option(
      "--lock-timeout <ms>",
      "how long to wait for a lock another connection holds, then LOCK_TIMEOUT (0: no limit)",
      wholeNumber("--lock-timeout", 0, 86_400_000),
      15_000,
    )
    .addOption(new Option("--pool-size <n>", "PostgreSQL connections").argParser(wholeNumber("--pool-size", 1, 1000)))
    .option("--no-prepare", "no named prepared statements (a transaction pooler turns them off by itself)")
    .option("--no-batch", "apply concurrent token operations one by one, not batched (race-test, serve)")
    .showHelpAfterError(false)
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb migrate && briefdb health
  $ briefdb seed --local && briefdb race-test --n 1000
  $ briefdb tokens deduct seed-user-1 5 --key req-7f3a --json
  $ briefdb slow-queries --probe
  $ briefdb --db postgres://me@localhost:5432/briefs migrate --status

Exit codes: 0 done · 1 failed or unhealthy · 2 bad usage or input · 3 refused by a rule (nothing changed)
            4 outcome unknown (connection lost after a write was sent) · 130/143/129 interrupted (SIGINT/SIGTERM/SIGHUP)`,
    );
  for (const command of commands) program.addCommand(command);
  return quietErrors(program);
}

/** A commander error with the command whose parse raised it (for its help and its name in hints). */
type CommandError = CommanderError & { command?: Command };

/**
 * Usage errors are reported by runCli as one line; commander must not print its own. Each error
 * carries the command it came from, so that a hint names that command's help. Every command's help
 * shows the global options (--db, --json), which a subcommand takes too.
 */
function quietErrors(command: Command): Command {
  // writeErr too: a missing subcommand would otherwise dump the whole help on stderr
  command
    .exitOverride((error: CommandError) => {
      error.command ??= command;
      throw error;
    })
    .configureOutput({ outputError: () => {}, writeErr: () => {} })
    .configureHelp({ showGlobalOptions: true });
  for (const sub of command.commands) quietErrors(sub);
  return command;
}

export interface RunCliOptions {
  /**
   * The process is the CLI's own (bin/briefdb): once the run has said what it did, a signal that
   * comes while the process winds down (connections closing) ends it with the run's exit code,
   * and the process ends as soon as its output is written. Left to its default action a signal
   * killed the process, so an applied deduct that had printed `"ok": true` exited 143 (SIGTERM),
   * the code of a run interrupted before it changed anything.
   */
  readonly ownsProcess?: boolean;
}

/**
 * Runs the program on `args` (the words after `briefdb`) and resolves to its exit code. The one
 * place that prints a command's outcome or failure; bin/briefdb calls it, tests can too.
 */
export async function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<number> {
  const status = await runProgram(args);
  if (options.ownsProcess === true) {
    for (const signal of RUN_SIGNALS) process.on(signal, () => process.exit(status));
    // and ends once its output is written: a process left to wind down by itself tears its signal
    // handling down last, when a signal again kills it
    await new Promise<void>((written) => process.stdout.write("", () => process.stderr.write("", () => written())));
    process.exit(status);
  }
  return status;
}

async function runProgram(args: readonly string[]): Promise<number> {
  endQuietlyOnClosedPipes();
  const versionOnly = args.some((a) => a === "--version" || a === "-V") && args.every((a) => VERSION_FLAGS.has(a));
  if (versionOnly) {
    // the commonest start-up of all answers before commander is even loaded
    process.stdout.write(args.includes("--json") ? `${JSON.stringify({ ok: true, version })}\n` : `${version}\n`);
    return 0;
  }
  const program = await buildProgram();
  const [{ recordRuns }, render, { toBriefdbError }] = await Promise.all([
    import("./commands/context.js"),
    import("./render.js"),
    import("./core/failures.js"),
  ]);
  const controller = new AbortController();
  /** The message of the spinner or progress bar showing, if one is. */
  let watching: string | undefined;
  const ui = (): Ui => run.context?.ui ?? fallbackUi(render, args);
  const interruptedStatus = (): number => SIGNAL_EXIT[run.interruptedBy ?? "SIGINT"] ?? EXIT_CODES.CANCELLED;
  const run = recordRuns(
    program,
    {
      // Ctrl-C at a spinner or progress bar: clack ends the process itself, so the exit is rewritten
      watch(message) {
        watching = message;
        const onExit = () => {
          process.exitCode = interruptedStatus();
          render.emitError(ui(), new BriefdbError("CANCELLED", message), false);
        };
        process.once("exit", onExit);
        return () => {
          watching = undefined;
          process.off("exit", onExit);
        };
      },
      interrupt: () => process.exit(interruptedStatus()),
    },
    controller.signal,
  );
  // SIGINT, SIGTERM and SIGHUP are the run's: a command that answers them (ctx.answerSignals) gets the
  // first as an abort and says what became of its work; any other ends here with one line
  const onSignal = (signal: NodeJS.Signals) => {
    if (run.interruptedBy !== undefined) {
      const error = !run.answersSignals
        ? new BriefdbError("CANCELLED", `interrupted by ${run.interruptedBy}`)
        : run.changesData === false
          ? new BriefdbError("CANCELLED", `interrupted again (${signal}) while stopping: ended at once; it was changing nothing`)
          : new BriefdbError(
              "OUTCOME_UNKNOWN",
              `interrupted again (${signal}) before the command could say what became of its work: a change it was making may or may not have been applied`,
              "look before repeating it; a token change repeated with the same --key replays if it was applied",
            );
      if (watching === undefined || error.code !== "CANCELLED") render.emitError(ui(), error, false);
      process.exit(error.code === "CANCELLED" ? interruptedStatus() : error.exitCode);
    }
    run.interruptedBy = signal;
    controller.abort(new BriefdbError("CANCELLED", `interrupted by ${signal}`));
    if (run.answersSignals) return;
    // a spinner's watch prints its own line as the process exits
    if (watching === undefined) render.emitError(ui(), new BriefdbError("CANCELLED", `interrupted by ${signal}`), false);
    process.exit(interruptedStatus());
  };
  for (const signal of RUN_SIGNALS) process.on(signal, onSignal);
  const onUncaught = (error: Error) => {
    if (process.listenerCount("uncaughtException") > 1) return; // the host process (tests, an app) has its own
    render.emitError(ui(), toBriefdbError(error), process.env.BRIEFDB_DEBUG === "1");
    process.exit(EXIT_CODES.INTERNAL);
  };
  process.on("uncaughtException", onUncaught);
  try {
    const code = await runParsed();
    // a connection its server never closed (frozen mid-TCP) would keep the process alive for as
    // long as the server stays silent: the outcome is printed, so the process ends now
    if (run.context?.abandonedConnection === true) process.exit(code);
    return code;
  } finally {
    for (const signal of RUN_SIGNALS) process.off(signal, onSignal);
    process.off("uncaughtException", onUncaught);
  }

  async function runParsed(): Promise<number> {
    let failure: BriefdbError | undefined;
    try {
      await program.parseAsync([...args], { from: "user" });
    } catch (caught) {
      if (isCommanderError(caught) && caught.exitCode === 0) return 0; // --help, --version
      const topic = isCommanderError(caught) && caught.code === "commander.help" ? unknownHelpTopic(program, args) : undefined;
      if (topic === undefined && isCommanderError(caught) && caught.code === "commander.help" && !args.includes("--json")) {
        // `briefdb` or `briefdb tokens` alone: the help of what was named, as gh and Prisma do
        process.stdout.write(((caught as CommandError).command ?? program).helpInformation());
        return 0;
      }
      failure = topic ?? (isCommanderError(caught) ? usageError(caught) : await normalise(caught, run.context?.database));
    }
    if (failure !== undefined) {
      render.emitError(ui(), failure, process.env.BRIEFDB_DEBUG === "1");
      return failure.code === "CANCELLED" ? interruptedStatus() : failure.exitCode;
    }
    if (run.outcome === undefined) return 0;
    // a URL read from ./.env is named in the JSON too (the `target` field is redacted, as always)
    const fromDotEnv = run.context?.urlSource === ".env";
    render.emitOutcome(ui(), fromDotEnv ? { ...run.outcome, data: { ...run.outcome.data, targetFrom: ".env" } } : run.outcome);
    if (run.outcome.ok) return 0;
    return run.outcome.error?.code === "CANCELLED" ? interruptedStatus() : (run.outcome.error?.exitCode ?? 1);
  }
}

let pipesWatched = false;

/**
 * A reader that goes away (`briefdb … | head -1`) closes the pipe: stop writing, as Unix tools do,
 * without a stack. The exit code still tells what the command did (a deduct piped into `true` was
 * applied: exit 0), so a script never retries a write that happened.
 */
function endQuietlyOnClosedPipes(): void {
  if (pipesWatched) return;
  pipesWatched = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      // EIO: the terminal itself is gone (SIGHUP's usual cause); the exit code still tells
      if (error.code !== "EPIPE" && error.code !== "EIO") throw error;
    });
  }
}

/** The output settings before commander has parsed the options (a usage error, say). */
function fallbackUi(render: typeof import("./render.js"), args: readonly string[]): Ui {
  return render.createUi({ json: args.includes("--json"), color: !args.includes("--no-color") });
}

async function normalise(caught: unknown, source: FailureSource | undefined): Promise<BriefdbError> {
  if (caught instanceof BriefdbError) return caught;
  const { toBriefdbError } = await import("./core/failures.js");
  return toBriefdbError(caught, source);
}

function isCommanderError(value: unknown): value is CommanderError {
  return (
    value instanceof Error &&
    !(value instanceof BriefdbError) &&
    typeof (value as Partial<CommanderError>).exitCode === "number" &&
    typeof (value as Partial<CommanderError>).code === "string"
  );
}

/**
 * `briefdb help frob` (or `briefdb tokens help frob`): commander shows the parent's help and exits
 * 0, which a script reads as success. A name that is no subcommand of the command it follows is
 * USAGE, as `briefdb frob` is. Words after a command without subcommands are its arguments (a
 * user may be called "help").
 */
function unknownHelpTopic(program: Command, args: readonly string[]): BriefdbError | undefined {
  let parent = program;
  for (let i = 0; i < args.length - 1; i++) {
    const word = args[i] ?? "";
    if (word === "help" && parent.commands.length > 0) {
      const name = args[i + 1] ?? "";
      if (name.startsWith("-") || parent.commands.some((c) => c.name() === name || c.aliases().includes(name))) return undefined;
      return new BriefdbError("USAGE", `unknown command '${name}'`, `see \`${commandPath(parent)} --help\``);
    }
    const sub = parent.commands.find((c) => c.name() === word);
    if (sub !== undefined) parent = sub;
  }
  return undefined;
}

function usageError(caught: CommandError): BriefdbError {
  const help = `see \`${commandPath(caught.command)} --help\``;
  if (caught.code === "commander.help") {
    // no (sub)command given where one is needed (with --json: the help is not the one JSON object)
    return new BriefdbError("USAGE", "a command is missing here", help);
  }
  // commander's message may end in a second line: "(Did you mean migrate?)"
  const [first = "", ...rest] = caught.message.replace(/^error:\s*/, "").split("\n");
  const suggestion = /\(Did you mean (.+)\?\)/.exec(rest.join(" "))?.[1];
  // commander reads "-5" as an unknown option; for an amount it is a negative number
  const negative = /^unknown option '(-\d[^']*)'/.exec(first);
  if (negative && caught.code === "commander.unknownOption") {
    return new BriefdbError("INVALID_AMOUNT", `invalid amount "${negative[1]}": an amount is a positive whole number in digits`);
  }
  const hint = suggestion === undefined ? help : `did you mean ${suggestion}? ${help}`;
  return new BriefdbError("USAGE", first, hint);
}

/** "briefdb tokens deduct" for the command an error came from; "briefdb" when it is not known. */
function commandPath(command: Command | undefined): string {
  const names: string[] = [];
  for (let at = command; at !== undefined && at !== null; at = at.parent ?? undefined) names.unshift(at.name());
  return names.length === 0 ? "briefdb" : names.join(" ");
}
