/**
 * Exit codes and words at the edges of the CLI face: closed pipes, the end of input at a prompt,
 * production spelled any way, control characters in stored text, disguised SQLite URLs, and
 * race-test's derived balance.
 */
import { spawn } from "node:child_process";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createColors } from "picocolors";
import { isProductionEnvironment } from "../src/db/target.js";
import { createUi, table } from "../src/render.js";
import { isLocalTarget, parseTarget } from "../src/index.js";
import { BIN, cli, DIALECTS, freshDatabase, pgAdminUrl } from "./support/databases.js";
import { dumpRows, execute, seedWith, tableCounts, timestampLiteral } from "./support/tables.js";
import { runOnTty } from "./support/tty.js";

const TINY = { users: 3, briefs: 3, reviews: 3, transactions: 5 };

/** Runs the CLI with its stdout read by a reader that goes away after the first chunk. */
function runIntoClosedPipe(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let stderr = "";
    child.stdout.once("data", () => child.stdout.destroy());
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

describe.each(DIALECTS)("%s: edges of the CLI", (dialect) => {
  it("a closed pipe ends the output quietly: no stack, and the exit code is the command's", async () => {
    const db = await freshDatabase(dialect);
    await seedWith(db, { users: 1, briefs: 1, reviews: 1, transactions: 1000 });
    const history = await runIntoClosedPipe(["tokens", "history", "seed-user-1", "--limit", "1000", "--db", db]);
    expect(history).toEqual({ code: 0, stderr: "" });
    const help = await runIntoClosedPipe(["--help"]);
    expect(help).toEqual({ code: 0, stderr: "" });
    // the deduct happened although nobody read its answer: exit 0 says so, a retry would charge twice
    const deduct = await runIntoClosedPipe(["tokens", "deduct", "seed-user-1", "1", "--db", db]);
    expect(deduct).toEqual({ code: 0, stderr: "" });
  });

  it("the input ending at the clear prompt (Ctrl-D) is a refusal: exit 3, one line, nothing changed", async () => {
    const db = await freshDatabase(dialect);
    await seedWith(db, TINY);
    const before = await dumpRows(db);
    const run = await runOnTty(["clear", "--local", "--db", db], [{ waitFor: "Remove every seeded row from", send: "\x04" }]);
    expect(run.code).toBe(3);
    expect(run.output).toContain("error: clear not confirmed: the input ended with no answer; nothing changed");
    expect(await dumpRows(db)).toEqual(before);
  });

  it("NODE_ENV=\" Production \" is production: seed and clear --all refuse with NOT_LOCAL, nothing changed", async () => {
    const db = await freshDatabase(dialect);
    await seedWith(db, TINY);
    const before = await tableCounts(db);
    const seed = await cli(["seed", "--local", "--db", db, "--json"], { env: { NODE_ENV: " Production " } });
    expect(seed.code).toBe(3);
    expect(seed.json).toMatchObject({ ok: false, error: { code: "NOT_LOCAL" } });
    const clear = await cli(["clear", "--local", "--all", "--yes", "--db", db], { env: { NODE_ENV: " Production " } });
    expect(clear.code).toBe(3);
    expect(clear.stderr).toMatch(/^error: clear runs on local databases only; refused .* \(NODE_ENV=Production\)/);
    // the target is a SQLite file: "point --db at a SQLite file" was no help
    expect(clear.stderr).toMatch(/hint: NODE_ENV says production/);
    expect(await tableCounts(db)).toEqual(before);
  });

  it("control characters in stored text are shown escaped to people and kept exact in JSON", async () => {
    const db = await freshDatabase(dialect);
    await seedWith(db, TINY);
    const at = timestampLiteral(dialect);
    const userId = "evil\x1b[2J-user";
    await execute(db, [
      sql`INSERT INTO users (id, email, name, token_balance, created_at, updated_at) VALUES (${userId}, 'evil@app.test', 'Evil', 0, ${at}, ${at})`,
    ]);
    const reason = "\x1b]0;pwned\x07retitled\rover\x1b[2Jcleared\x9b";
    const credit = await cli(["tokens", "credit", userId, "5", "--reason", reason, "--db", db]);
    expect(credit.code).toBe(0);
    expect(credit.stdout).toContain("evil\\x1b[2J-user");
    const history = await cli(["tokens", "history", userId, "--db", db]);
    expect(history.code).toBe(0);
    expect(history.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(history.stdout).toContain("\\x1b]0;pwned\\x07retitled\\rover\\x1b[2Jcleared\\x9b");
    const json = await cli(["tokens", "history", userId, "--db", db, "--json"]);
    expect(json.json?.entries?.[0]?.reason).toBe(reason);
    const missing = await cli(["tokens", "balance", "no\x1b]0;such\x07user", "--db", db]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('no user with id "no\\x1b]0;such\\x07user"');
  });

  it("bidirectional overrides (U+202E, Trojan Source) are escaped for people too; a newline in an error line is shown as \\n", async () => {
    // a stored right-to-left override reordered the rest of the row as the terminal drew it
    const db = await freshDatabase(dialect);
    await seedWith(db, TINY);
    const reason = "refund \u202e0001\u202c \u2066x\u2069";
    const credit = await cli(["tokens", "credit", "seed-user-1", "5", "--reason", reason, "--db", db]);
    expect(credit.code).toBe(0);
    const history = await cli(["tokens", "history", "seed-user-1", "--limit", "1", "--db", db]);
    expect(history.stdout).not.toMatch(/[\u202a-\u202e\u2066-\u2069]/);
    expect(history.stdout).toContain("refund \\u202e0001\\u202c \\u2066x\\u2069");
    const json = await cli(["tokens", "history", "seed-user-1", "--limit", "1", "--db", db, "--json"]);
    expect(json.json?.entries?.[0]?.reason).toBe(reason);
    // "a\nb" and "a b" are different users: the error line said "a b" for both
    const missing = await cli(["tokens", "balance", "a\nb\u202e", "--db", db]);
    expect(missing.stderr).toContain('no user with id "a\\nb\\u202e"');
  });
});

describe("colour from stored text", () => {
  it("on a coloured terminal, a stored string may recolour its text but never conceal, blink or invert it", () => {
    const ui = { ...createUi({ json: false, color: true }), colors: createColors(true) };
    const cell = table(ui, ["reason"], [["\x1b[8mhidden\x1b[5mblink\x1b[7minverse\x1b[31mred"]]);
    expect(cell).toContain("\\x1b[8mhidden\\x1b[5mblink\\x1b[7minverse\x1b[31mred");
  });
});

describe("URLs and derived values checked before connecting", () => {
  it.each(["production", "Production", " production ", "PRODUCTION\n", "prod", "PROD", "prd", "live", "Live "])(
    "NODE_ENV=%j makes nothing local, not even a SQLite file",
    (nodeEnv) => {
      expect(isProductionEnvironment({ NODE_ENV: nodeEnv })).toBe(true);
      expect(isLocalTarget(parseTarget("file:./x.db"), { NODE_ENV: nodeEnv })).toBe(false);
    },
  );

  it.each(["development", "test", "", "staging", "productionish"])("NODE_ENV=%j is not production", (nodeEnv) => {
    expect(isProductionEnvironment({ NODE_ENV: nodeEnv })).toBe(false);
  });

  it.each(["sqlite://me:topsecret@db.example.invalid/x.db", "file://me:topsecret@db.example.invalid/x.db", "sqlite://me:topsecret@x.db"])(
    "%s is INVALID_URL (exit 2), its password never printed",
    async (url) => {
      const run = await cli(["health", "--db", url, "--json"]);
      expect(run.code).toBe(2);
      expect(run.json).toMatchObject({ ok: false, error: { code: "INVALID_URL" } });
      expect(run.stdout + run.stderr).not.toContain("topsecret");
      expect(run.stderr).toContain("me:***@");
    },
  );

  it("a PostgreSQL database that does not exist on a running server says so, not 'is the server running'", async () => {
    const url = new URL(pgAdminUrl());
    url.pathname = "/briefdb_no_such_database";
    const run = await cli(["health", "--db", url.toString(), "--json"]);
    expect(run.code).toBe(1);
    expect(run.json?.error).toMatchObject({ code: "DB_UNREACHABLE", hint: expect.stringContaining("has no such database") });
  });

  it("race-test refuses a default opening balance past 2^53-1, naming --n and --amount, before connecting", async () => {
    const run = await cli(["race-test", "--n", "10", "--amount", "9007199254740991", "--db", "postgres://u@db.example.invalid/x", "--allow-remote"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: --n 10 and --amount 9007199254740991 make a default opening balance of 45035996273704955 /);
    expect(run.stderr).toContain("give --balance");
  });
});
