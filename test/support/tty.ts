/**
 * Runs the built CLI on a real pseudo-terminal (util-linux `script`), so prompts, progress bars and
 * Ctrl-C are tested as a person meets them rather than skipped.
 */
import { spawn } from "node:child_process";
import { BIN } from "./databases.js";

export interface TtyStep {
  /** Output to wait for before sending. */
  readonly waitFor: string;
  /** Keys to type: "\x03" is Ctrl-C, "\r" is Enter. */
  readonly send: string;
}

export interface TtyResult {
  readonly code: number | null;
  readonly output: string;
}

/** `env` adds to the environment; a key set to undefined is removed from it (e.g. NO_COLOR). */
export function runOnTty(
  args: readonly string[],
  steps: readonly TtyStep[],
  env: Record<string, string | undefined> = {},
  columns = 120,
): Promise<TtyResult> {
  const command = [`stty cols ${columns} rows 40 2>/dev/null;`, "exec", shellQuote(process.execPath), shellQuote(BIN), ...args.map(shellQuote)].join(" ");
  const childEnv: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", ...env };
  delete childEnv.DATABASE_URL;
  delete childEnv.NODE_ENV;
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete childEnv[key];
  const child = spawn("script", ["-qfec", command, "/dev/null"], { env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  let next = 0;
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
    const step = steps[next];
    if (step !== undefined && output.includes(step.waitFor)) {
      next += 1;
      // A short pause lets the prompt finish drawing and switch the terminal to raw mode.
      setTimeout(() => child.stdin.write(step.send), 200);
    }
  });
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
