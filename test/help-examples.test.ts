/**
 * Every example in every --help runs as written, in a shell, on the database the seed leaves (the
 * default ./briefdb.db of an empty folder) and on a test PostgreSQL. Two rewrites only, for what an
 * example can only name: its placeholder PostgreSQL server (postgres://me@…/briefs) becomes the
 * test server's database, and the app's deduct endpoint (http://127.0.0.1:3000/api/tokens/deduct)
 * becomes a real app's (test/support/deduct-app.ts). `serve` runs until SIGTERM, sent after 3 s.
 * An example exits 0 unless its own comment says otherwise: a gate or "must fail" may exit 1, and
 * a confirmation that "asks first" refuses without a terminal (exit 3, nothing changed).
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli.js";
import { migrate, openDatabase, type BriefDatabase } from "../src/index.js";
import { BIN, cli, freshDatabase } from "./support/databases.js";
import { startDeductApp, type DeductApp } from "./support/deduct-app.js";

const run = promisify(execFile);

/** Each command's path (["tokens", "hold"]), the program itself first, in the order of the help. */
function commandPaths(command: Command, path: string[] = []): string[][] {
  return [path, ...command.commands.flatMap((sub) => commandPaths(sub, [...path, sub.name()]))];
}

/** The `$ …` lines of a help text, a line ending in `\` joined with the next. */
function examplesOf(help: string): string[] {
  const joined = help.replace(/\\\n\s*/g, "");
  return [...joined.matchAll(/^\s+\$ (.+)$/gm)].map((match) => match[1]!);
}

/** Seed before the commands that need its rows; clear last, since it removes them. */
function rank(path: string[]): number {
  if (path[0] === "seed") return 1;
  if (path[0] === "clear") return 3;
  return path.length === 0 || path[0] === "migrate" || path[0] === "health" ? 0 : 2;
}

function allowedExits(example: string): number[] {
  // serve runs until the SIGTERM sent after 3 s: exit 0, or 143 when it came while serve was still
  // opening the database on a loaded machine (interrupted, nothing served)
  if (/^briefdb( --\S+ \S+)* serve\b/.test(example)) return [0, 143];
  if (/asks first/.test(example)) return [3];
  return /must fail|exit 1|gate/i.test(example) ? [0, 1] : [0];
}

let folder: string;
let pgUrl: string;
let app: DeductApp;
let appDb: BriefDatabase;

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), "briefdb-examples-"));
  const shim = join(folder, "bin");
  await run("mkdir", ["-p", shim]);
  writeFileSync(join(shim, "briefdb"), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(shim, "briefdb"), 0o755);
  pgUrl = await freshDatabase("postgresql");
  const pg = await openDatabase(pgUrl);
  await migrate(pg);
  await pg.close();
  // the app answers for the SQLite file the examples work on
  expect((await cli(["seed", "--local", "--db", `file:${join(folder, "briefdb.db")}`])).code).toBe(0);
  appDb = await openDatabase(`file:${join(folder, "briefdb.db")}`);
  app = await startDeductApp(appDb);
}, 120_000);

afterAll(async () => {
  await app?.close();
  await appDb?.close();
});

describe("--help examples", () => {
  it("every one runs as written", { timeout: 300_000 }, async () => {
    const program = await buildProgram();
    const paths = commandPaths(program).sort((a, b) => rank(a) - rank(b));
    const failures: string[] = [];
    let count = 0;
    for (const path of paths) {
      const help = (await cli([...path, "--help"])).stdout;
      const examples = examplesOf(help);
      if (examples.length === 0) continue;
      // one shell per command, so that an example may use what an earlier one set ($HOLD)
      const script = ["set -o pipefail"];
      for (const [i, example] of examples.entries()) {
        // the comment is for people (and allowedExits): cut, so that the redirects below are not part of it
        let line = example
          .replace(/\s+#\s.*$/, "")
          .replace(/postgres:\/\/me@[^\s/]+\/briefs/g, pgUrl)
          .replace("http://127.0.0.1:3000/api/tokens/deduct", `${app.url}/atomic/deduct`);
        if (/^briefdb( --\S+ \S+)* serve\b/.test(line)) line = `timeout --preserve-status -s TERM 3 ${line}`;
        script.push(`${line} > /dev/null 2> err.txt; echo "::${i} $? $(head -c 300 err.txt | tr '\\n' ' ')"`);
      }
      const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", PATH: `${join(folder, "bin")}:${process.env.PATH}` };
      delete env.DATABASE_URL;
      delete env.NODE_ENV;
      const { stdout } = await run("bash", ["-c", script.join("\n")], { cwd: folder, env, maxBuffer: 64 * 1024 * 1024, timeout: 240_000 });
      for (const [, index, code, stderr] of stdout.matchAll(/^::(\d+) (\d+) ?(.*)$/gm)) {
        const example = examples[Number(index)]!;
        count++;
        if (!allowedExits(example).includes(Number(code))) failures.push(`briefdb ${path.join(" ")} --help: \`${example}\` exited ${code}: ${stderr}`);
      }
    }
    expect(failures).toEqual([]);
    expect(count).toBeGreaterThanOrEqual(40);
  });
});
