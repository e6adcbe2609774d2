import { sql } from "drizzle-orm";
import { statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cli, DIALECTS, freshDatabase, type TestDialect } from "./support/databases.js";
import { driftingUsers, dumpRows, execute, seedWith, tableCounts, timestampLiteral, withDatabase } from "./support/tables.js";
import { runOnTty } from "./support/tty.js";

const TINY = { users: 5, briefs: 10, reviews: 10, transactions: 20 };
const SEEDED = { models: 12, users: 5, briefs: 10, reviews: 10, token_transactions: 20, query_log: 0 };

/**
 * A seeded database beside rows the app wrote: app-only rows that must stay, and app rows that
 * hang on seeded ones (a ledger row of a seeded user, a review of a seeded brief, a brief on a
 * seeded model) and must go with them, plus an app ledger row naming a seeded brief.
 */
async function seededWithAppRows(dialect: TestDialect): Promise<string> {
  const db = await freshDatabase(dialect);
  await seedWith(db, TINY);
  const at = timestampLiteral(dialect);
  await execute(db, [
    sql`INSERT INTO users (id, email, name, token_balance, created_at, updated_at) VALUES ('app-user-1', 'ada@app.test', 'Ada', 70, ${at}, ${at})`,
    sql`INSERT INTO models (id, name, provider, slug, created_at) VALUES ('app-model-1', 'House model', 'Us', 'house', ${at})`,
    sql`INSERT INTO briefs (id, slug, title, content, user_id, model_id, published, view_count, created_at, updated_at)
        VALUES ('app-brief-1', 'ours', 'Ours', 'text', 'app-user-1', 'app-model-1', true, 3, ${at}, ${at})`,
    sql`INSERT INTO briefs (id, slug, title, content, user_id, model_id, published, view_count, created_at, updated_at)
        VALUES ('app-brief-2', 'ours-on-seeded-model', 'Ours too', 'text', 'app-user-1', 'seed-model-1', false, 0, ${at}, ${at})`,
    sql`INSERT INTO reviews (id, brief_id, user_id, rating, comment, created_at) VALUES ('app-review-1', 'app-brief-1', 'app-user-1', 5, NULL, ${at})`,
    sql`INSERT INTO reviews (id, brief_id, user_id, rating, comment, created_at) VALUES ('app-review-2', 'seed-brief-2', 'app-user-1', 4, NULL, ${at})`,
    sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, created_at)
        VALUES ('app-txn-1', 'app-user-1', 100, 'credit', 'signup', NULL, 100, ${at})`,
    sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, created_at)
        VALUES ('app-txn-2', 'app-user-1', -30, 'deduct', 'brief generation', 'seed-brief-1', 70, ${at})`,
    sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, created_at)
        VALUES ('app-txn-3', 'seed-user-1', 10, 'credit', 'top-up', NULL, 10, ${at})`,
    sql`UPDATE users SET token_balance = token_balance + 10 WHERE id = 'seed-user-1'`,
    sql`INSERT INTO query_log (name, duration_ms, failed, recorded_at) VALUES ('listing', 612.5, false, ${at})`,
  ]);
  expect(await driftingUsers(db)).toEqual([]);
  return db;
}

describe.each(DIALECTS)("%s: clear --local", (dialect) => {
  it("removes exactly the seeded rows and what hangs on them; app rows stay and balances still match", async () => {
    const db = await seededWithAppRows(dialect);
    const result = await cli(["clear", "--local", "--yes", "--db", db, "--json"]);
    expect(result.code).toBe(0);
    expect(result.json).toEqual({
      ok: true,
      target: expect.any(String),
      all: false,
      counts: { models: 12, users: 5, briefs: 11, reviews: 11, token_transactions: 21, token_holds: 0, query_log: 0 },
      detachedLedgerRows: 1,
      compacted: null,
      ...(dialect === "sqlite" ? { freeBytes: expect.any(Number) } : {}),
    });
    const rows = await dumpRows(db);
    expect(rows.users?.map((r) => r.id)).toEqual(["app-user-1"]);
    expect(rows.models?.map((r) => r.id)).toEqual(["app-model-1"]);
    expect(rows.briefs?.map((r) => r.id)).toEqual(["app-brief-1"]);
    expect(rows.reviews?.map((r) => r.id)).toEqual(["app-review-1"]);
    expect(rows.token_transactions?.map((r) => [r.id, r.brief_id, r.amount])).toEqual([
      ["app-txn-1", null, 100],
      ["app-txn-2", null, -30],
    ]);
    expect(await driftingUsers(db)).toEqual([]);
    expect((await tableCounts(db)).query_log).toBe(1);

    const again = await cli(["clear", "--local", "--yes", "--db", db]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/total\s+│ 0 /);
  });

  it("--all empties every app table and keeps the migrations", async () => {
    const db = await seededWithAppRows(dialect);
    const result = await cli(["clear", "--local", "--all", "--yes", "--db", db, "--json"]);
    expect(result.code).toBe(0);
    expect(result.json?.counts).toEqual({ models: 13, users: 6, briefs: 12, reviews: 12, token_transactions: 23, token_holds: 0, query_log: 1 });
    expect(await tableCounts(db)).toEqual({ models: 0, users: 0, briefs: 0, reviews: 0, token_transactions: 0, query_log: 0 });
    expect((await cli(["migrate", "--status", "--db", db])).code).toBe(0);
  });

  it("--compact gives the freed space back and says how much; without it, the outcome says what is free", async () => {
    const db = await freshDatabase(dialect);
    const sizes = ["--users", "200", "--briefs", "3000", "--reviews", "3000", "--transactions", "3000"];
    expect((await cli(["seed", "--local", ...sizes, "--db", db])).code).toBe(0);
    const plain = await cli(["clear", "--local", "--all", "--yes", "--db", db, "--json"]);
    expect(plain.code).toBe(0);
    expect(plain.json).toMatchObject({ compacted: null });
    if (dialect === "sqlite") expect((plain.json as { freeBytes: number }).freeBytes).toBeGreaterThan(1_000_000);
    else expect(plain.json).not.toHaveProperty("freeBytes"); // PostgreSQL does not say cheaply
    expect((await cli(["seed", "--local", ...sizes, "--db", db])).code).toBe(0);
    const compacted = await cli(["clear", "--local", "--all", "--yes", "--compact", "--db", db, "--json"]);
    expect(compacted.code).toBe(0);
    const { beforeBytes, afterBytes, freedBytes } = (compacted.json as { compacted: { beforeBytes: number; afterBytes: number; freedBytes: number } }).compacted;
    expect(freedBytes).toBe(beforeBytes - afterBytes);
    // SQLite's VACUUM rewrites the file; PostgreSQL's gives back the empty pages at a table's end
    // only when it gets the table's lock at once (autovacuum may hold it), so it frees what it can
    if (dialect === "sqlite") {
      expect(freedBytes).toBeGreaterThan(1_000_000);
      expect(afterBytes).toBeLessThan(beforeBytes / 2);
    } else expect(freedBytes).toBeGreaterThanOrEqual(0);
    if (dialect === "sqlite") expect(statSync(new URL(db).pathname).size).toBeLessThan(beforeBytes / 2);
    expect(await tableCounts(db)).toEqual({ models: 0, users: 0, briefs: 0, reviews: 0, token_transactions: 0, query_log: 0 });
    const human = await cli(["clear", "--local", "--all", "--yes", "--compact", "--db", db]);
    expect(human.stdout).toMatch(/compacted\s+\S+ (B|kB|MB) → \S+ (B|kB|MB) \(\S+ (B|kB|MB) freed\)/);
  });

  it.each([[[]], [["--all"]]])("off a TTY without --yes (%j): exit 3 CONFIRMATION_REQUIRED, nothing changed", async (extra) => {
    const db = await seededWithAppRows(dialect);
    const before = await dumpRows(db);
    const result = await cli(["clear", "--local", ...extra, "--db", db, "--json"]);
    expect(result.code).toBe(3);
    expect(result.json).toMatchObject({ ok: false, error: { code: "CONFIRMATION_REQUIRED", hint: "add --yes (needed with --json and when not on a terminal)" } });
    expect(result.stderr).toMatch(/^error: clear would remove .* and needs confirmation; nothing changed/);
    expect(await dumpRows(db)).toEqual(before);
  });

  it("on a TTY it asks first; Ctrl-C cancels with exit 130 and nothing changed", async () => {
    const db = await seededWithAppRows(dialect);
    const before = await dumpRows(db);
    const run = await runOnTty(["clear", "--local", "--db", db], [{ waitFor: "Remove every seeded row from", send: "\x03" }]);
    expect(run.code).toBe(130);
    expect(run.output).toContain("error: clear cancelled; nothing changed");
    expect(await dumpRows(db)).toEqual(before);
  });

  it("on a TTY, answering no refuses with exit 3 and nothing changed", async () => {
    const db = await seededWithAppRows(dialect);
    const before = await dumpRows(db);
    const run = await runOnTty(["clear", "--local", "--db", db], [{ waitFor: "Remove every seeded row from", send: "n\r" }]);
    expect(run.code).toBe(3);
    expect(run.output).toContain("error: clear not confirmed; nothing changed");
    expect(await dumpRows(db)).toEqual(before);
  });

  it("on a TTY, answering yes clears", async () => {
    const db = await seededWithAppRows(dialect);
    const run = await runOnTty(["clear", "--local", "--all", "--db", db], [{ waitFor: "Remove every row of every app table", send: "y\r" }]);
    expect(run.code).toBe(0);
    expect(run.output).toMatch(/total\s+│ 67/);
    expect(await tableCounts(db)).toEqual({ models: 0, users: 0, briefs: 0, reviews: 0, token_transactions: 0, query_log: 0 });
  });

  it.runIf(dialect === "sqlite")("on a TTY, clear --all offers to compact what it freed: yes compacts, no leaves it and says so", async () => {
    const db = await freshDatabase(dialect);
    const sizes = ["--users", "200", "--briefs", "3000", "--reviews", "3000", "--transactions", "3000"];
    expect((await cli(["seed", "--local", ...sizes, "--db", db])).code).toBe(0);
    const yes = await runOnTty(["clear", "--local", "--all", "--db", db], [
      { waitFor: "Remove every row of every app table", send: "y\r" },
      { waitFor: "now (VACUUM gives about", send: "y\r" },
    ]);
    expect(yes.code).toBe(0);
    expect(yes.output).toMatch(/compacted\s+\S+ MB → \S+ kB/);
    expect((await cli(["seed", "--local", ...sizes, "--db", db])).code).toBe(0);
    const no = await runOnTty(["clear", "--local", "--all", "--db", db], [
      { waitFor: "Remove every row of every app table", send: "y\r" },
      { waitFor: "now (VACUUM gives about", send: "n\r" },
    ]);
    expect(no.code).toBe(0);
    expect(no.output).toMatch(/free space\s+\S+ MB inside the file/);
    expect(statSync(new URL(db).pathname).size).toBeGreaterThan(1_000_000);
  });

  it("on a TTY, a spinner says what clear is removing while it works, step by step", async () => {
    const db = await seededWithAppRows(dialect);
    const run = await runOnTty(["clear", "--local", "--db", db], [{ waitFor: "Remove every seeded row from", send: "y\r" }]);
    expect(run.code).toBe(0);
    const steps = [
      "removing token_transactions (1/8)",
      "removing token_holds (2/8)",
      "detaching app ledger rows from removed briefs (3/8)",
      "detaching app holds from removed briefs (4/8)",
      "removing reviews (5/8)",
      "removing briefs (6/8)",
      "removing users (7/8)",
      "removing models (8/8)",
      /removed \d+ rows/,
    ];
    const positions = steps.map((step) => (typeof step === "string" ? run.output.indexOf(step) : run.output.search(step)));
    expect(positions.every((at) => at >= 0), run.output).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it("without --local: exit 2; NODE_ENV=production: exit 3 NOT_LOCAL; nothing changed either way", async () => {
    const db = await freshDatabase(dialect);
    await seedWith(db, TINY);
    const missing = await cli(["clear", "--yes", "--db", db]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: clear works on local databases only and needs --local \(hint: /);
    const production = await cli(["clear", "--local", "--yes", "--db", db, "--json"], { env: { NODE_ENV: "production" } });
    expect(production.code).toBe(3);
    expect(production.json).toMatchObject({ ok: false, error: { code: "NOT_LOCAL" } });
    expect(await tableCounts(db)).toEqual(SEEDED);
  });

  it("a database that was never migrated: exit 1 and nothing created", async () => {
    const db = await freshDatabase(dialect);
    const result = await cli(["clear", "--local", "--yes", "--db", db, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json?.error?.code).toBe(dialect === "sqlite" ? "DB_UNREACHABLE" : "NOT_MIGRATED");
    if (dialect === "postgresql") await withDatabase(db, async (h) => expect(await h.tableExists("users")).toBe(false));
  });
});
