/**
 * The only place that writes to the terminal: JSON for scripts, tables and colour for people,
 * spinners and prompts only on a TTY. Commands build an Outcome; this module prints it.
 */
import { createRequire } from "node:module";
import { stripVTControlCharacters } from "node:util";
import { createColors } from "picocolors";
import { LATENCY_BUCKETS_MS } from "./core/stats.js";
import type { BriefdbError } from "./errors.js";
import { sleep } from "./retry.js";

export type Colors = ReturnType<typeof createColors>;

export interface Ui {
  readonly json: boolean;
  readonly colors: Colors;
  /** stdout is a terminal and output is for people: tables may be wide, spinners may spin. */
  readonly interactive: boolean;
  readonly stdinTty: boolean;
  readonly interruptions: Interruptions;
}

/**
 * How a run ends when a person interrupts it while a spinner, bar or prompt shows. The CLI
 * (runCli) supplies it: exit 130 with one line. Outside the CLI nothing happens.
 */
export interface Interruptions {
  /** Until the returned function is called, any end of the process is this interruption. */
  watch(message: string): () => void;
  /** Ends the process now, as interrupted (a watch says why). */
  interrupt(): void;
}

const noInterruptions: Interruptions = { watch: () => () => {}, interrupt: () => {} };

/** What a command hands back: the JSON fields, and how to say it to a person. */
export interface Outcome {
  readonly ok: boolean;
  readonly data: Record<string, unknown>;
  /** Why it failed, when ok is false: printed as the error line, and as `error` in JSON. */
  readonly error?: BriefdbError;
  readonly human: (ui: Ui) => string;
  /** A long-running command already wrote its JSON object when it started (announce): none at the end. */
  readonly announced?: boolean;
}

export interface UiOptions {
  readonly json: boolean;
  readonly color: boolean;
  readonly interruptions?: Interruptions;
}

export function createUi(options: UiOptions): Ui {
  const stdoutTty = process.stdout.isTTY === true;
  return {
    json: options.json,
    colors: createColors(options.color && !options.json && colorsOn(stdoutTty)),
    interactive: stdoutTty && !options.json,
    stdinTty: process.stdin.isTTY === true,
    interruptions: options.interruptions ?? noInterruptions,
  };
}

/**
 * Whether a stream gets colour, as no-color.org and FORCE_COLOR say: a NO_COLOR that is set and
 * not empty turns it off; a FORCE_COLOR other than "0" or "false" turns it on even when piped (a
 * CI log that renders colour); otherwise a terminal gets colour and a pipe does not.
 */
export function colorsOn(isTty: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.NO_COLOR ?? "") !== "") return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force.toLowerCase() !== "false";
  return isTty;
}

/** A line of progress for logs (stderr, so stdout keeps its one result). */
export function progressLine(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** What a long-running command says once it is up: its one JSON object, or a line for people. */
export function announce(ui: Ui, data: Record<string, unknown>, text: string): void {
  if (ui.json) writeJson({ ok: true, ...data });
  else process.stdout.write(`${text}\n`);
}

export function emitOutcome(ui: Ui, outcome: Outcome): void {
  if (ui.json && outcome.announced && outcome.ok) return;
  if (ui.json) {
    const error = outcome.error ? { error: outcome.error.toJSON() } : {};
    writeJson({ ok: outcome.ok, ...error, ...outcome.data });
  } else {
    const text = shownSafely(ui, outcome.human(ui), true);
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
  const stderrColors = createColors(!ui.json && ui.colors.isColorSupported && colorsOn(process.stderr.isTTY === true));
  const hint = error.hint ? stderrColors.dim(` (hint: ${oneLine(escapeControls(error.hint))})`) : "";
  process.stderr.write(`${stderrColors.red("error:")} ${oneLine(escapeControls(error.message))}${hint}\n`);
}

function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Text on one line (runs of white space as one space), cut to `width` with an ellipsis when given. */
export function oneLine(text: string, width = Number.POSITIVE_INFINITY): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}

/**
 * The characters never written raw: C0 and C1 controls, and the invisible ones that reorder or
 * break the text around them — bidirectional embeddings, overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069, the marks U+200E, U+200F, U+061C: "Trojan Source") and the line and paragraph
 * separators (U+2028, U+2029). A stored reason must not be able to make a row read otherwise.
 */
const UNSAFE = "\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069";
const UNSAFE_CHARACTER = new RegExp(`[${UNSAFE}]`, "g");
// ESC [ … m of the styles briefdb itself uses (bold, dim, red, green, yellow, blue, magenta, cyan,
// grey and their resets), or any one unsafe character: a stored string may recolour its own text,
// never conceal, blink or invert it
const CONTROL = new RegExp(`\\x1b\\[(?:1|2|22|31|32|33|34|35|36|39|90)m|[${UNSAFE}]`, "g");
const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Text from the database (a stored reason, a user id) shown to a person: control characters are
 * written as escapes (`\x1b`, `\r`), so a stored string can never retitle, clear or rewrite the
 * reader's terminal. Colour sequences pass only when this output is coloured (they can restyle
 * text, nothing more); newlines and tabs pass only where the text is multi-line.
 */
function shownSafely(ui: Ui, text: string, multiline: boolean): string {
  const colored = ui.colors.isColorSupported;
  return text.replace(CONTROL, (match) => {
    if (match.length > 1) return colored ? match : escapeControls(match);
    // a newline or a tab can only lay out the text (as in the SQL `migrate --dry-run` prints)
    return (match === "\n" || match === "\t") && multiline ? match : escapeControls(match);
  });
}

/** Every control character in `text` as a visible escape. */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE_CHARACTER, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
  });
}

type TableConstructor = new (options: Record<string, unknown>) => { push(...rows: unknown[]): void; toString(): string };
let Table: TableConstructor | undefined;

/** A cli-table3 table as text; loaded on first use to keep start-up fast. */
export function table(ui: Ui, head: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  Table ??= createRequire(import.meta.url)("cli-table3") as TableConstructor;
  const plain = !ui.colors.isColorSupported;
  const cells = rows.map((row) => row.map((cell) => shownSafely(ui, String(cell), false)));
  const fitted = ui.interactive ? fittedWidths([head, ...cells], process.stdout.columns) : undefined;
  const t = new Table({
    head: head.map((h) => ui.colors.bold(h)),
    style: { head: [], border: plain ? [] : ["grey"], compact: true },
    ...(fitted === undefined ? {} : { colWidths: fitted, wordWrap: true, wrapOnWordBoundary: true }),
  });
  t.push(...cells);
  return t.toString();
}

/**
 * Column widths (padding included) that fit a table into a terminal `columns` wide, or undefined
 * when it fits as it is (or the width is unknown, as in a pipe: logs keep whole lines). The widest
 * columns give way first, down to a floor, and wrap their text.
 */
export function fittedWidths(rows: ReadonlyArray<ReadonlyArray<string>>, columns: number | undefined): number[] | undefined {
  if (columns === undefined || columns <= 0 || rows.length === 0) return undefined;
  const count = Math.max(...rows.map((row) => row.length));
  const natural = Array.from({ length: count }, (_, i) => Math.max(...rows.map((row) => longestLine(row[i] ?? ""))) + 2);
  const budget = columns - (count + 1); // one border between and around the columns
  if (natural.reduce((a, b) => a + b, 0) <= budget) return undefined;
  const floor = 8;
  // the highest cap under which the capped widths still fit: every column wider than it is cut to it
  let cap = Math.max(...natural);
  while (cap > floor && natural.reduce((sum, width) => sum + Math.min(width, cap), 0) > budget) cap--;
  return natural.map((width) => Math.min(width, cap));
}

function longestLine(text: string): number {
  return Math.max(...stripVTControlCharacters(text).split("\n").map((line) => line.length));
}

/** Lines of `label  value`, the labels padded to one width. */
export function keyValues(ui: Ui, pairs: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${ui.colors.dim(label.padEnd(width))}  ${shownSafely(ui, value, false)}`).join("\n");
}

/** A bucket of a latency histogram as the library reports it (core/stats.ts). */
export interface HistogramBucket {
  readonly leMs: number | null;
  readonly count: number;
}

/**
 * A latency histogram as text, one line a bucket, bars scaled to the fullest (a bucket with any
 * sample shows at least one block), so the shape behind p50 and p99 reads at a glance:
 *   ≤ 0.5 ms  ████████████████████ 912
 *   ≤ 250 ms  ▏ 3
 */
export function textHistogram(ui: Ui, buckets: readonly HistogramBucket[], width = 30): string {
  const most = Math.max(0, ...buckets.map((b) => b.count));
  if (most === 0) return "";
  const labels = buckets.map((b) => (b.leMs === null ? `> ${LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]} ms` : `≤ ${b.leMs} ms`));
  const pad = Math.max(...labels.map((l) => l.length));
  const lines = buckets.map((b, i) => {
      const blocks = b.count === 0 ? "" : "█".repeat(Math.max(1, Math.round((b.count / most) * width)));
    return `  ${ui.colors.dim(labels[i]!.padEnd(pad))}  ${ui.colors.cyan(blocks)}${b.count === 0 ? "" : " "}${formatCount(b.count)}`;
  });
  return [ui.colors.dim("latency histogram (count per bucket)"), ...lines].join("\n");
}

/** Bytes as a person reads them: 0 B, 812 kB, 280.4 MB (powers of 1000, as disk tools print). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = n / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/**
 * A histogram in one cell: its first bound, a bar per bucket (▁ to █, a space for none), its last:
 * `≤1000 ▂█ ▁ ≤10000` (ms). The shape beside the percentiles, compact enough for a table.
 */
export function sparkline(buckets: readonly HistogramBucket[]): string {
  const most = Math.max(0, ...buckets.map((b) => b.count));
  if (most === 0) return "";
  const bars = "▁▂▃▄▅▆▇█";
  const drawn = buckets.map((b) => (b.count === 0 ? " " : bars[Math.min(7, Math.floor((b.count / most) * 7.999))])).join("");
  const bound = (b: HistogramBucket | undefined) => (b?.leMs === null || b === undefined ? `>${LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]}` : `≤${b.leMs}`);
  return buckets.length === 1 ? `${drawn} ${bound(buckets[0])}` : `${bound(buckets[0])} ${drawn} ${bound(buckets[buckets.length - 1])}`;
}

/** A row count for people: 1,000,000. */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

export interface Spinner {
  message(text: string): void;
  /**
   * Shows `text` and resolves once the spinner has had time to draw it (at once when silent), so
   * that work which then holds the thread (a long SQLite statement) does not hide what it is.
   */
  show(text: string): Promise<void>;
  stop(text?: string): void;
  fail(text: string): void;
}

const silentSpinner: Spinner = { message: () => {}, show: async () => {}, stop: () => {}, fail: () => {} };

/** A little over clack's slowest frame delay (120 ms without Unicode, 80 ms with). */
const SPINNER_FRAME_MS = 130;

/** A spinner on a TTY for people; silent for scripts and pipes. Ctrl-C while it spins exits 130. */
export async function startSpinner(ui: Ui, text: string, interrupted: string): Promise<Spinner> {
  if (!ui.interactive) return silentSpinner;
  const { spinner } = await import("@clack/prompts");
  // clack ends the process itself on Ctrl-C (exit 0 in raw mode): the watch reports it as 130
  const release = ui.interruptions.watch(interrupted);
  const s = spinner({ onCancel: () => ui.interruptions.interrupt() });
  s.start(text);
  return {
    message: (t) => s.message(t),
    show: async (t) => {
      s.message(t);
      await sleep(SPINNER_FRAME_MS);
    },
    stop: (t) => {
      release();
      s.stop(t ?? text);
    },
    fail: (t) => {
      release();
      s.error(t);
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
  const release = ui.interruptions.watch(interrupted);
  return {
    update(done, total, text) {
      if (bar === undefined) {
        // A signal stops clack's bar and calls onCancel; the watch reports the interruption (130)
        bar = clack.progress({ max: Math.max(1, total), onCancel: () => ui.interruptions.interrupt() });
        bar.start(text);
      }
      bar.advance(done - shown, text);
      shown = done;
    },
    stop(text) {
      release();
      bar?.stop(text);
    },
    fail(text) {
      release();
      bar?.error(text);
    },
  };
}

/** Whether a question can be asked: both ends are a terminal and no script reads the output. */
export function canPrompt(ui: Ui): boolean {
  return ui.interactive && ui.stdinTty;
}

/**
 * A yes/no question on the terminal: "yes", "no", "cancelled" (Ctrl-C, Escape), or "eof" when the
 * input ends with no answer (Ctrl-D): clack's prompt then never settles, and the process would
 * drain and exit 13 with nothing said, so the end of input is an answer of its own.
 */
export async function confirmOnTty(message: string): Promise<"yes" | "no" | "cancelled" | "eof"> {
  const { confirm, isCancel } = await import("@clack/prompts");
  let noMoreInput: () => void = () => {};
  const ended = new Promise<"eof">((resolve) => {
    noMoreInput = () => resolve("eof");
    process.once("beforeExit", noMoreInput);
    process.stdin.once("end", noMoreInput);
  });
  try {
    const answer = await Promise.race([confirm({ message, initialValue: false }), ended]);
    if (answer === "eof") return "eof";
    if (isCancel(answer)) return "cancelled";
    return answer ? "yes" : "no";
  } finally {
    process.off("beforeExit", noMoreInput);
    process.stdin.off("end", noMoreInput);
  }
}
