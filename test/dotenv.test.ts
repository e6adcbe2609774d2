import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { databaseUrl } from "../src/commands/context.js";
import { cli } from "./support/databases.js";

/** A folder holding a .env that names a SQLite file in the same folder. */
function appFolder(): { cwd: string; file: string } {
  const cwd = mkdtempSync(join(tmpdir(), "briefdb-dotenv-"));
  const file = join(cwd, "from-dotenv.db");
  writeFileSync(join(cwd, ".env"), `# the app's settings\nNEXT_PUBLIC_X=1\nDATABASE_URL="file:${file}"\n`);
  return { cwd, file };
}

describe("DATABASE_URL from ./.env", () => {
  it("without --db and DATABASE_URL, the CLI works on the .env's URL and says so (stderr line, targetFrom in --json)", async () => {
    const { cwd, file } = appFolder();
    const migrated = await cli(["migrate", "--json"], { cwd });
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.json).toMatchObject({ ok: true, targetFrom: ".env" });
    expect(migrated.json?.target).toContain(file);
    const human = await cli(["health"], { cwd });
    expect(human.code).toBe(0);
    expect(human.stderr).toBe("database URL: DATABASE_URL from ./.env\n");
    expect(human.stdout).toContain(file);
  });

  it("--db and the environment's DATABASE_URL win over .env; without .env the default file", () => {
    const { cwd } = appFolder();
    expect(databaseUrl("file:/x/explicit.db", { DATABASE_URL: "file:/x/env.db" }, cwd)).toEqual({ url: "file:/x/explicit.db", source: "--db" });
    expect(databaseUrl(undefined, { DATABASE_URL: "file:/x/env.db" }, cwd)).toEqual({ url: "file:/x/env.db", source: "DATABASE_URL" });
    expect(databaseUrl(undefined, {}, cwd).source).toBe(".env");
    expect(databaseUrl(undefined, {}, mkdtempSync(join(tmpdir(), "briefdb-no-dotenv-")))).toEqual({ url: "file:./briefdb.db", source: "default" });
  });
});

describe("a .env that is not a small regular file is not read", () => {
  it("a FIFO (whose open would block for ever), a device, a directory, a huge file: the default target, at once", () => {
    const fifo = mkdtempSync(join(tmpdir(), "briefdb-dotenv-"));
    execFileSync("mkfifo", [join(fifo, ".env")]);
    expect(databaseUrl(undefined, {}, fifo)).toEqual({ url: "file:./briefdb.db", source: "default" });
    const device = mkdtempSync(join(tmpdir(), "briefdb-dotenv-"));
    symlinkSync("/dev/zero", join(device, ".env"));
    expect(databaseUrl(undefined, {}, device)).toEqual({ url: "file:./briefdb.db", source: "default" });
    const directory = mkdtempSync(join(tmpdir(), "briefdb-dotenv-"));
    mkdirSync(join(directory, ".env"));
    expect(databaseUrl(undefined, {}, directory)).toEqual({ url: "file:./briefdb.db", source: "default" });
    const huge = mkdtempSync(join(tmpdir(), "briefdb-dotenv-"));
    writeFileSync(join(huge, ".env"), `DATABASE_URL=file:./x.db\n${"#".repeat(2 * 1024 * 1024)}\n`);
    expect(databaseUrl(undefined, {}, huge)).toEqual({ url: "file:./briefdb.db", source: "default" });
  });
});
