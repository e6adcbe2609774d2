import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { ALL_MIGRATIONS, cli, DIALECTS, freshDatabase } from "./support/databases.js";
import { driftingUsers, dumpRows, execute, seedWith, tableCounts, timestampLiteral, untouched, withDatabase } from "./support/tables.js";
import { runOnTty } from "./support/tty.js";

const SMALL = { users: 8, briefs: 20, reviews: 30, transactions: 60 };
const SMALL_FLAGS = ["--users", "8", "--briefs", "20", "--reviews", "30", "--transactions", "60"];

describe.each(DIALECTS)("%s: seed --local", (dialect) => {
  it("applies pending migrations first, says so, and seeds the default sizes", async () => {
    const db = await freshDatabase(dialect);
    const first = await cli(["seed", "--local", "--db", db, "--json"]);
    expect(first.code).toBe(0);
    expect(first.json).toMatchObject({
      ok: true,
      seed: 1,
      migrated: ALL_MIGRATIONS,
      counts: { models: 12, users: 100, briefs: 1000, reviews: 3000, token_transactions: 5000 },
      rows: 9112,
    });
    expect(await tableCounts(db)).toEqual({ models: 12, users: 100, briefs: 1000, reviews: 3000, token_transactions: 5000, query_log: 0 });

    const again = await cli(["seed", "--local", "--db", db]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/migrations\s+up to date/);
    expect(again.stdout).toContain("9,112 rows of an earlier seed");
    expect(again.stdout).toMatch(/token_transactions\s+│ 5,000/);
    expect(await tableCounts(db)).toEqual({ models: 12, users: 100, briefs: 1000, reviews: 3000, token_transactions: 5000, query_log: 0 });
  });

  it("every balance equals its ledger right after seeding, opening with a credit, balance_after a running sum", async () => {
    const db = await freshDatabase(dialect);
    await seedWith(db, { users: 30, briefs: 10, reviews: 0, transactions: 400 });
    expect(await driftingUsers(db)).toEqual([]);
    await withDatabase(db, async (handle) => {
      const broken = await handle.all(sql`
        SELECT id FROM (
          SELECT id, balance_after, SUM(amount) OVER (PARTITION BY user_id ORDER BY created_at) AS running FROM token_transactions
        ) ledger WHERE balance_after <> running`);
      expect(broken).toEqual([]);
      const openings = await handle.all<{ type: string; reason: string; n: number | string }>(sql`
        SELECT type, reason, count(*) AS n FROM token_transactions t
        WHERE created_at = (SELECT min(created_at) FROM token_transactions f WHERE f.user_id = t.user_id)
        GROUP BY type, reason`);
      expect(openings.map((row) => ({ ...row, n: Number(row.n) }))).toEqual([{ type: "credit", reason: "opening balance", n: 30 }]);
      const deducts = await handle.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM token_transactions WHERE type = 'deduct' AND brief_id IS NOT NULL`);
      expect(Number(deducts[0]?.n)).toBeGreaterThan(0);
    });
  });

  it("the same --seed gives the same rows, ids included; another seed gives other rows", async () => {
    const db = await freshDatabase(dialect);
    expect((await cli(["seed", "--local", "--db", db, "--seed", "42", ...SMALL_FLAGS])).code).toBe(0);
    const first = await dumpRows(db);
    await seedWith(db, { ...SMALL, seed: 42 });
    expect(await dumpRows(db)).toEqual(first);
    expect(first.users?.map((u) => u.id)).toEqual(Array.from({ length: 8 }, (_, i) => `seed-user-${i + 1}`).sort());
    await seedWith(db, { ...SMALL, seed: 43 });
    const other = await dumpRows(db);
    expect(other.users?.map((u) => u.id)).toEqual(first.users?.map((u) => u.id));
    expect(other.users).not.toEqual(first.users);
    expect(other.briefs).not.toEqual(first.briefs);
  });

  it("--scale small seeds the small sizes, and a size given beside it wins", async () => {
    const db = await freshDatabase(dialect);
    const result = await cli(["seed", "--local", "--db", db, "--scale", "small", "--users", "5", "--json"]);
    expect(result.code).toBe(0);
    expect(result.json?.counts).toEqual({ models: 12, users: 5, briefs: 100, reviews: 300, token_transactions: 500 });
  });

  it("three seeds at once all succeed and leave exactly one seed; three clears at once all succeed", async () => {
    const db = await freshDatabase(dialect);
    const seeds = await Promise.all([0, 1, 2].map(() => cli(["seed", "--local", "--db", db, "--json", ...SMALL_FLAGS])));
    expect(seeds.map((r) => [r.code, r.stderr])).toEqual([[0, ""], [0, ""], [0, ""]]);
    const once = await freshDatabase(dialect);
    await seedWith(once, SMALL);
    expect(await dumpRows(db)).toEqual(await dumpRows(once));

    const clears = await Promise.all([0, 1, 2].map(() => cli(["clear", "--local", "--yes", "--db", db, "--json"])));
    expect(clears.map((r) => [r.code, r.stderr])).toEqual([[0, ""], [0, ""], [0, ""]]);
    expect(clears.map((r) => r.json?.counts.users).sort()).toEqual([0, 0, SMALL.users]);
    expect(await tableCounts(db)).toEqual({ models: 0, users: 0, briefs: 0, reviews: 0, token_transactions: 0, query_log: 0 });
  });

  it("rows the app wrote survive a re-seed", async () => {
    const db = await freshDatabase(dialect);
    await seedWith(db, SMALL);
    const at = timestampLiteral(dialect);
    await execute(db, [
      sql`INSERT INTO users (id, email, name, token_balance, created_at, updated_at) VALUES ('app-user-1', 'ada@app.test', 'Ada', 100, ${at}, ${at})`,
      sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at) VALUES ('app-txn-1', 'app-user-1', 100, 'credit', 'signup', 100, ${at})`,
    ]);
    await seedWith(db, SMALL);
    expect(await tableCounts(db)).toMatchObject({ users: 9, token_transactions: 61 });
    expect(await driftingUsers(db)).toEqual([]);
  });

  it("a seeded value taken by an app row fails cleanly (exit 1, a hint) and seeds nothing", async () => {
    const db = await freshDatabase(dialect);
    expect((await cli(["migrate", "--db", db])).code).toBe(0);
    const at = timestampLiteral(dialect);
    await execute(db, [sql`INSERT INTO models (id, name, provider, slug, created_at) VALUES ('app-model-1', 'Ours', 'Us', 'seed-gpt-4o', ${at})`]);
    const result = await cli(["seed", "--local", "--db", db, ...SMALL_FLAGS]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: seed collides with a row the app wrote \(.*models.*slug.*\); nothing was seeded \(hint: seed reserves ids starting with seed-/);
    expect(await tableCounts(db)).toEqual({ models: 1, users: 0, briefs: 0, reviews: 0, token_transactions: 0, query_log: 0 });
  });

  it("shows progress on a TTY; Ctrl-C rolls the whole seed back and exits 130", async () => {
    const db = await freshDatabase(dialect);
    await seedWith(db, SMALL);
    const before = await dumpRows(db);
    const big = ["--users", "2000", "--briefs", "0", "--reviews", "0", "--transactions", "3000000"];
    const run = await runOnTty(["seed", "--local", "--db", db, ...big], [{ waitFor: "token_transactions", send: "\x03" }]);
    expect(run.output).toContain("error: seed interrupted: its transaction was rolled back");
    expect(run.code).toBe(130);
    expect(await dumpRows(db)).toEqual(before);
  });

  it("bad input (no --local, negative or non-numeric sizes, an unknown --scale, briefs without users): exit 2, one line, nothing created", async () => {
    const db = await freshDatabase(dialect);
    const cases: Array<[string[], string]> = [
      [[], "seed works on local databases only and needs --local (hint: run `briefdb seed --local` against a SQLite file or a PostgreSQL server on localhost)"],
      [["--local", "--users", "-5"], '--users takes a whole number from 0 to 50000000, not "-5"'],
      [["--local", "--briefs", "abc"], '--briefs takes a whole number from 0 to 50000000, not "abc"'],
      [["--local", "--reviews", "1.5"], '--reviews takes a whole number from 0 to 50000000, not "1.5"'],
      [["--local", "--transactions", "1e3"], '--transactions takes a whole number from 0 to 50000000, not "1e3"'],
      [["--local", "--seed", "-1"], '--seed takes a whole number at least 0, not "-1"'],
      [["--local", "--scale", "huge"], '--scale takes one of small, medium, large, not "huge"'],
      [["--local", "--users", "0"], "briefs, reviews and transactions need at least one user (hint: raise --users above 0)"],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(["seed", "--db", db, "--json", ...args])));
    for (const [i, result] of results.entries()) {
      expect(result.code).toBe(2);
      expect(result.json).toMatchObject({ ok: false, error: { code: "USAGE" } });
      expect(result.stderr).toBe(`error: ${cases[i]?.[1]}\n`);
    }
    expect(await untouched(dialect, db)).toBe(true);
  });

  it("NODE_ENV=production: exit 3 NOT_LOCAL before connecting, nothing created", async () => {
    const db = await freshDatabase(dialect);
    const result = await cli(["seed", "--local", "--db", db, "--json"], { env: { NODE_ENV: "production" } });
    expect(result.code).toBe(3);
    expect(result.json).toMatchObject({ ok: false, error: { code: "NOT_LOCAL" } });
    expect(result.stderr).toMatch(/^error: seed runs on local databases only; refused .* \(NODE_ENV=production\)/);
    expect(result.stderr).not.toContain("briefdb-test-s3cret");
    expect(await untouched(dialect, db)).toBe(true);
  });
});

describe("seed across dialects", () => {
  it("SQLite and PostgreSQL get identical rows, ids and timestamps included, from the same seed", async () => {
    const [lite, pg] = await Promise.all(DIALECTS.map((dialect) => freshDatabase(dialect)));
    await Promise.all([lite, pg].map((db) => seedWith(db!, { ...SMALL, seed: 7 })));
    const [liteRows, pgRows] = await Promise.all([dumpRows(lite!), dumpRows(pg!)]);
    expect(liteRows.token_transactions).toHaveLength(60);
    expect(pgRows).toEqual(liteRows);
  });

  it.each(["seed", "clear"])("%s refuses a remote PostgreSQL URL with exit 3, redacted, without contacting it", async (command) => {
    const result = await cli(["--db", "postgres://u:pw@db.example.invalid/x", command, "--local", ...(command === "clear" ? ["--yes"] : [])]);
    expect(result.code).toBe(3);
    expect(result.stderr).toBe(
      `error: ${command} runs on local databases only; refused postgres://u:***@db.example.invalid/x (the host is not local) (hint: point --db at a SQLite file or a PostgreSQL server on localhost)\n`,
    );
  });
});
