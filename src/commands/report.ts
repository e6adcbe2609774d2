/** What `--report <file.html>` shares between race-test and slow-queries: the path's check, the redacted command line. */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { redactUrl } from "../db/target.js";
import { BriefdbError } from "../errors.js";

/** --report: a file whose folder exists and may be written, checked before anything connects. */
export function reportPath(value: string): string {
  const path = resolve(value);
  try {
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new Error("EISDIR");
    accessSync(dirname(path), constants.W_OK);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new BriefdbError("USAGE", `--report cannot write ${value}: ${why}`, "give a file path in a folder you can write to");
  }
  return path;
}

/** Options whose values are secrets in the command line a report shows. */
const SECRET_OPTIONS = new Set(["--token"]);

/** `briefdb <args>` as run, with passwords in URLs, header values and tokens replaced by ***. */
export function redactedCommandLine(argv: readonly string[] = process.argv.slice(2)): string {
  const shown = argv.map((arg, i) => {
    const previous = argv[i - 1] ?? "";
    if (SECRET_OPTIONS.has(previous)) return "***";
    if (previous === "--header") return arg.replace(/:.*$/s, ": ***");
    const [flag, value] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=") + 1), arg.slice(arg.indexOf("=") + 1)] : ["", arg];
    if (SECRET_OPTIONS.has(flag.slice(0, -1))) return `${flag}***`;
    return `${flag}${redactUrl(value)}`;
  });
  return ["briefdb", ...shown.map(quoted)].join(" ");
}

function quoted(arg: string): string {
  return /^[\w@%+=:,./*-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}
