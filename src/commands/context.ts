/**
 * What every command shares: the global options, the database it opens (closed when the command
 * ends), and the wrapper that turns a command's Outcome or error into output and an exit code.
 */
import type { Command } from "commander";
import type { BriefDatabase, OpenOptions } from "../db/database.js";
import { chooseUrl, parseTarget, type Target } from "../db/target.js";
import { asBriefdbError, BriefdbError } from "../errors.js";
import { createUi, emitError, emitOutcome, type Outcome, type Ui } from "../render.js";

export interface GlobalOptions {
  readonly db?: string;
  readonly json: boolean;
  readonly color: boolean;
  readonly timeout: number;
  readonly prepare: boolean;
  readonly poolSize?: number;
}

export class Context {
  readonly ui: Ui;
  private opened: BriefDatabase | undefined;
  private parsedTarget: Target | undefined;

  constructor(readonly globals: GlobalOptions) {
    this.ui = createUi({ json: globals.json, color: globals.color });
  }

  /** The target of --db / DATABASE_URL / the default, parsed but not connected. */
  get target(): Target {
    this.parsedTarget ??= parseTarget(chooseUrl(this.globals.db));
    return this.parsedTarget;
  }

  async open(options: OpenOptions = {}): Promise<BriefDatabase> {
    const { openTarget } = await import("../db/open.js");
    this.opened = await openTarget(this.target, {
      timeoutMs: this.globals.timeout,
      prepare: this.globals.prepare,
      ...(this.globals.poolSize === undefined ? {} : { poolSize: this.globals.poolSize }),
      ...options,
    });
    return this.opened;
  }

  async toError(error: unknown): Promise<BriefdbError> {
    if (error instanceof BriefdbError || this.opened === undefined) return asBriefdbError(error);
    const { toBriefdbError } = await import("../core/failures.js");
    return toBriefdbError(this.opened, error);
  }

  async close(): Promise<void> {
    const db = this.opened;
    this.opened = undefined;
    await db?.close().catch(() => {});
  }
}

type CommandFn<A extends unknown[]> = (ctx: Context, ...args: A) => Promise<Outcome>;

/**
 * A commander action that runs `fn` with a Context, prints its Outcome and sets the exit code.
 * Commander passes positional arguments, then the command's options, then the command.
 */
export function action<A extends unknown[]>(fn: CommandFn<A>): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const ctx = new Context(command.optsWithGlobals<GlobalOptions>());
    try {
      const outcome = await fn(ctx, ...([...args.slice(0, -2), command.opts()] as A));
      emitOutcome(ctx.ui, outcome);
      process.exitCode = outcome.ok ? 0 : (outcome.error?.exitCode ?? 1);
    } catch (caught) {
      const error = await ctx.toError(caught);
      emitError(ctx.ui, error, process.env.BRIEFDB_DEBUG === "1");
      process.exitCode = error.exitCode;
    } finally {
      await ctx.close();
    }
  };
}
