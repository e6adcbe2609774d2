/**
 * What every command shares: the global options, the database it opens (closed when the command
 * ends), and the wrapper that hands a command's Outcome back to runCli (src/cli.ts), which alone
 * prints it and turns it, or a failure, into the exit code.
 */
import type { Command } from "commander";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "node:util";
import type { BriefDatabase, CloseOptions, OpenOptions } from "../db/database.js";
import { DEFAULT_URL, parseTarget, type Target } from "../db/target.js";
import { createUi, progressLine, type Interruptions, type Outcome, type Ui } from "../render.js";

/** Where the database URL came from. */
export type UrlSource = "--db" | "DATABASE_URL" | ".env" | "default";

/**
 * The URL a command works on: --db, else the environment's DATABASE_URL, else DATABASE_URL in
 * ./.env (where a Next.js app keeps it; read, never loaded into the environment), else the local
 * default file. An unreadable .env counts as none.
 */
export function databaseUrl(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): { url: string; source: UrlSource } {
  if (explicit !== undefined) return { url: explicit, source: "--db" };
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== "") return { url: env.DATABASE_URL, source: "DATABASE_URL" };
  const fromFile = dotEnvUrl(cwd);
  if (fromFile !== undefined && fromFile !== "") return { url: fromFile, source: ".env" };
  return { url: DEFAULT_URL, source: "default" };
}

/** Past this, a .env is not one (a dump, a device): it is not read. */
const DOT_ENV_MAX_BYTES = 1024 * 1024;

function dotEnvUrl(cwd: string): string | undefined {
  let text: string;
  try {
    // only a regular file of a sensible size: a FIFO would block the open for ever (no signal
    // ends it), /dev/zero would never end
    const file = statSync(join(cwd, ".env"));
    if (!file.isFile() || file.size > DOT_ENV_MAX_BYTES) return undefined;
    text = readFileSync(join(cwd, ".env"), "utf8");
  } catch {
    return undefined;
  }
  return parseEnv(text).DATABASE_URL;
}

export interface GlobalOptions {
  readonly db?: string;
  readonly json: boolean;
  readonly color: boolean;
  readonly timeout: number;
  readonly prepare: boolean;
  /** Batch concurrent token operations (commander's --no-batch makes it false). */
  readonly batch?: boolean;
  readonly poolSize?: number;
  readonly lockTimeout: number;
}

export class Context {
  readonly ui: Ui;
  private opened: BriefDatabase | undefined;
  /** Kept after close: runCli reads a failure with the driver of the database it came from. */
  private lastOpened: BriefDatabase | undefined;
  private parsedTarget: Target | undefined;
  /** Where the target's URL came from, once the target was read. */
  urlSource: UrlSource | undefined;
  /** A close of this command's database left a connection its server never closed. */
  abandonedConnection = false;

  constructor(
    readonly globals: GlobalOptions,
    private readonly run?: CommandRun,
  ) {
    const interruptions = run?.interruptions;
    this.ui = createUi({ json: globals.json, color: globals.color, ...(interruptions ? { interruptions } : {}) });
  }

  /**
   * From now on this command answers SIGINT/SIGTERM/SIGHUP itself: the first signal aborts the returned
   * signal instead of ending the process, and the command must stop what it can and say truly what
   * happened (a write in flight is cancelled on the server, or reported as applied). A second
   * signal still ends the process at once: OUTCOME_UNKNOWN, unless the command said it changes
   * nothing (`{ changesData: false }`: serve, health --wait), when it is the signal's own exit.
   * Outside runCli the signal never aborts.
   */
  answerSignals(options: { readonly changesData?: boolean } = {}): AbortSignal {
    if (this.run === undefined) return new AbortController().signal;
    this.run.answersSignals = true;
    this.run.changesData = options.changesData ?? true;
    return this.run.signal;
  }

  /** The signal that got the run interrupted (SIGINT, SIGTERM, SIGHUP), if any came. */
  get interruptedBy(): string | undefined {
    return this.run?.interruptedBy;
  }

  /** The target of --db / DATABASE_URL / the default, parsed but not connected. */
  get target(): Target {
    if (this.parsedTarget === undefined) {
      const { url, source } = databaseUrl(this.globals.db);
      this.urlSource = source;
      // said once, on stderr, as Prisma says it: a URL nobody typed must not be a surprise
      if (source === ".env" && !this.ui.json) progressLine("database URL: DATABASE_URL from ./.env");
      this.parsedTarget = parseTarget(url);
    }
    return this.parsedTarget;
  }

  /** The database this command opened (even if closed since), if it got that far: its driver reads the failures. */
  get database(): BriefDatabase | undefined {
    return this.opened ?? this.lastOpened;
  }

  /**
   * Opens the target with the global connection options. A missing SQLite file is not created
   * unless `create: true` (only the commands that build a schema ask for that).
   */
  async open(options: OpenOptions = {}): Promise<BriefDatabase> {
    const { openTarget } = await import("../db/open.js");
    this.opened = await openTarget(this.target, {
      timeoutMs: this.globals.timeout,
      prepare: this.globals.prepare,
      batch: this.globals.batch ?? true,
      ...(this.globals.poolSize === undefined ? {} : { poolSize: this.globals.poolSize }),
      lockTimeoutMs: this.globals.lockTimeout,
      create: false,
      ...options,
    });
    this.lastOpened = this.opened;
    return this.opened;
  }

  /** Opens the target and refuses (NOT_MIGRATED, exit 1) unless every migration is applied. */
  async openMigrated(): Promise<BriefDatabase> {
    const db = await this.open();
    const { assertMigrated } = await import("../core/migrate/records.js");
    await assertMigrated(db);
    return db;
  }

  /**
   * Closes the database this command opened; false when its server did not let go in time (a
   * connection abandoned, which may keep the process alive: runCli then exits once it has printed).
   */
  async close(options?: CloseOptions): Promise<boolean> {
    const db = this.opened;
    this.opened = undefined;
    if (db === undefined) return true;
    await db.close(options).catch(() => {});
    const clean = db.closedCleanly !== false;
    if (!clean) this.abandonedConnection = true;
    return clean;
  }

}

/** What one run of the program produced: the command's context and its Outcome, if it returned one. */
export interface CommandRun {
  /** How an interruption at a spinner or progress bar ends the run. */
  readonly interruptions: Interruptions;
  /** Aborted on the run's first SIGINT, SIGTERM or SIGHUP. */
  readonly signal: AbortSignal;
  /** The name of that signal, once it came. */
  interruptedBy?: string;
  /** Set by Context.answerSignals: the first signal is the command's to answer, not the end of the process. */
  answersSignals: boolean;
  /** False when the command answering signals changes no data: a second signal cannot leave a change's outcome unknown. */
  changesData?: boolean;
  context?: Context;
  outcome?: Outcome;
}

const runs = new WeakMap<Command, CommandRun>();

/** The record that the actions under `program` fill in; runCli reads it once parsing is done. */
export function recordRuns(program: Command, interruptions: Interruptions, signal: AbortSignal): CommandRun {
  const run: CommandRun = { interruptions, signal, answersSignals: false };
  runs.set(program, run);
  return run;
}

function runOf(command: Command): CommandRun {
  let root = command;
  while (root.parent) root = root.parent;
  const run = runs.get(root);
  if (run === undefined) throw new Error("briefdb: a command ran outside runCli");
  return run;
}

type CommandFn<A extends unknown[]> = (ctx: Context, ...args: A) => Promise<Outcome>;

/**
 * A commander action that runs `fn` with a Context and records its Outcome; a failure propagates
 * to runCli. Commander passes positional arguments, then the command's options, then the command.
 */
export function action<A extends unknown[]>(fn: CommandFn<A>): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const run = runOf(command);
    const ctx = new Context(command.optsWithGlobals<GlobalOptions>(), run);
    run.context = ctx;
    try {
      run.outcome = await fn(ctx, ...([...args.slice(0, -2), command.opts()] as A));
    } finally {
      await ctx.close();
    }
  };
}
