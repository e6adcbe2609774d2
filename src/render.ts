/**
 * The only place that writes to the terminal: JSON for scripts, tables and colour for people,
 * spinners and prompts only on a TTY. Commands build an Outcome; this module prints it.
 */
import { createRequire } from "node:module";
import { createColors } from "picocolors";
import type { BriefdbError } from "./errors.js";

export type Colors = ReturnType<typeof createColors>;

export interface Ui {
  readonly json: boolean;
  readonly colors: Colors;
  /** stdout is a terminal and output is for people: tables may be wide, spinners may spin. */
  readonly interactive: boolean;
  readonly stdinTty: boolean;
}

/** What a command hands back: the JSON fields, and how to say it to a person. */
export interface Outcome {
  readonly ok: boolean;
  readonly data: Record<string, unknown>;
  /** Why it failed, when ok is false: printed as the error line, and as `error` in JSON. */
  readonly error?: BriefdbError;
  readonly human: (ui: Ui) => string;
}

export function createUi(options: { json: boolean; color: boolean }): Ui {
  const stdoutTty = process.stdout.isTTY === true;
  const colorWanted = options.color && !("NO_COLOR" in process.env) && !options.json;
  return {
    json: options.json,
    colors: createColors(colorWanted && stdoutTty),
    interactive: stdoutTty && !options.json,
    stdinTty: process.stdin.isTTY === true,
  };
}

export function emitOutcome(ui: Ui, outcome: Outcome): void {
  if (ui.json) {
    const error = outcome.error ? { error: outcome.error.toJSON() } : {};
    writeJson({ ok: outcome.ok, ...error, ...outcome.data });
  } else {
    const text = outcome.human(ui);
    if (text !== "") process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }
  if (!outcome.ok && outcome.error) writeErrorLine(ui, outcome.error);
}

export function emitError(ui: Ui, error: BriefdbError, debug: boolean): void {
  if (ui.json) writeJson({ ok: false, error: error.toJSON() });
  writeErrorLine(ui, error);
  if (debug && error.cause instanceof Error && error.cause.stack) process.stderr.write(`${error.cause.stack}\n`);
  else if (debug && error.stack) process.stderr.write(`${error.stack}\n`);
}

function writeErrorLine(ui: Ui, error: BriefdbError): void {
  const stderrColors = createColors(ui.colors.isColorSupported && process.stderr.isTTY === true);
  const hint = error.hint ? stderrColors.dim(` (hint: ${error.hint})`) : "";
  process.stderr.write(`${stderrColors.red("error:")} ${oneLine(error.message)}${hint}\n`);
}

function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

type TableConstructor = new (options: Record<string, unknown>) => { push(...rows: unknown[]): void; toString(): string };
let Table: TableConstructor | undefined;

/** A cli-table3 table as text; loaded on first use to keep start-up fast. */
export function table(ui: Ui, head: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  Table ??= createRequire(import.meta.url)("cli-table3") as TableConstructor;
  const plain = !ui.colors.isColorSupported;
  const t = new Table({
    head: head.map((h) => ui.colors.bold(h)),
    style: { head: [], border: plain ? [] : ["grey"], compact: true },
  });
  t.push(...rows.map((row) => row.map(String)));
  return t.toString();
}

/** Lines of `label  value`, the labels padded to one width. */
export function keyValues(ui: Ui, pairs: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${ui.colors.dim(label.padEnd(width))}  ${value}`).join("\n");
}

/** A row count for people: 1,000,000. */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

export interface Spinner {
  message(text: string): void;
  stop(text?: string): void;
}

const silentSpinner: Spinner = { message: () => {}, stop: () => {} };

/**
 * clack ends the process with exit 0 on Ctrl-C, which would tell a script that an interrupted run
 * succeeded: while a spinner or bar shows, any exit is an interruption (exit 130, one line on
 * stderr). Returns the function that ends this watch.
 */
function treatExitAsInterruption(interrupted: string): () => void {
  const onExit = () => {
    process.exitCode = 130;
    process.stderr.write(`error: ${interrupted}\n`);
  };
  process.once("exit", onExit);
  return () => process.off("exit", onExit);
}

/** A spinner on a TTY for people; silent for scripts and pipes. Ctrl-C while it spins exits 130. */
export async function startSpinner(ui: Ui, text: string, interrupted: string): Promise<Spinner> {
  if (!ui.interactive) return silentSpinner;
  const { spinner } = await import("@clack/prompts");
  const s = spinner({ onCancel: () => process.exit() });
  const finish = treatExitAsInterruption(interrupted);
  s.start(text);
  return {
    message: (t) => s.message(t),
    stop: (t) => {
      finish();
      s.stop(t ?? text);
    },
  };
}

export interface Progress {
  /** Moves the bar to `done` of `total`, with a message. */
  update(done: number, total: number, text: string): void;
  stop(text: string): void;
  fail(text: string): void;
}

const silentProgress: Progress = { update: () => {}, stop: () => {}, fail: () => {} };

/** A progress bar on a TTY for people; silent for scripts and pipes. Ctrl-C while it shows exits 130. */
export async function startProgress(ui: Ui, interrupted: string): Promise<Progress> {
  if (!ui.interactive) return silentProgress;
  const clack = await import("@clack/prompts");
  let bar: ReturnType<typeof clack.progress> | undefined;
  let shown = 0;
  const finish = treatExitAsInterruption(interrupted);
  return {
    update(done, total, text) {
      if (bar === undefined) {
        // A signal stops clack's bar and calls onCancel; exiting then runs onExit above.
        bar = clack.progress({ max: Math.max(1, total), onCancel: () => process.exit() });
        bar.start(text);
      }
      bar.advance(done - shown, text);
      shown = done;
    },
    stop(text) {
      finish();
      bar?.stop(text);
    },
    fail(text) {
      finish();
      bar?.error(text);
    },
  };
}

/** Whether a question can be asked: both ends are a terminal and no script reads the output. */
export function canPrompt(ui: Ui): boolean {
  return ui.interactive && ui.stdinTty;
}

/** A yes/no question on the terminal: "yes", "no", or "cancelled" (Ctrl-C, Escape). */
export async function confirmOnTty(message: string): Promise<"yes" | "no" | "cancelled"> {
  const { confirm, isCancel } = await import("@clack/prompts");
  const answer = await confirm({ message, initialValue: false });
  if (isCancel(answer)) return "cancelled";
  return answer ? "yes" : "no";
}
