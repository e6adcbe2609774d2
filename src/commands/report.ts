/** What `--report <file.html>` shares between race-test and slow-queries: the path's check, the redacted command line. */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { displayUrl } from "../core/race/http-template.js";
import { redactUrl } from "../db/target.js";
import { BriefdbError } from "../errors.js";

/** --report: a file whose folder exists and may be written, checked before anything connects. */
export function reportPath(value: string): string {
  const path = resolve(value);
  try {
    const existing = statSync(path, { throwIfNoEntry: false });
    if (existing?.isDirectory()) throw new Error("EISDIR");
    // a FIFO or a device would block the write for ever (no signal ends it): a file, or nothing yet
    if (existing !== undefined && !existing.isFile()) throw new Error("not a regular file");
    accessSync(dirname(path), constants.W_OK);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new BriefdbError("USAGE", `--report cannot write ${value}: ${why}`, "give a file path in a folder you can write to");
  }
  return path;
}

/** Options whose values are secrets in the command line a report shows. */
const SECRET_OPTIONS = new Set(["--token"]);

/**
 * `briefdb <args>` as run, with tokens, header values, passwords and every query value of a URL
 * replaced by ***, in `--opt value` and `--opt=value` forms alike; other values (a body) as written.
 */
export function redactedCommandLine(argv: readonly string[] = process.argv.slice(2)): string {
  const shown = argv.map((arg, i) => {
    const previous = argv[i - 1] ?? "";
    const [flag, value] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=") + 1), arg.slice(arg.indexOf("=") + 1)] : ["", arg];
    const option = flag === "" ? previous : flag.slice(0, -1);
    if (flag === "" && arg.startsWith("--")) return arg;
    if (SECRET_OPTIONS.has(option)) return `${flag}***`;
    if (option === "--header") return `${flag}${value.replace(/:.*$/s, ": ***")}`;
    // a URL (--db, --url, or a bare one): its password and its query's values
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return `${flag}${displayUrl(redactUrl(value))}`;
    return `${flag}${value}`;
  });
  return ["briefdb", ...shown.map(quoted)].join(" ");
}

function quoted(arg: string): string {
  return /^[\w@%+=:,./*-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}
