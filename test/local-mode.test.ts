import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { localModeOptimizations, openDatabase, type SeedProgress } from "../src/index.js";
import { ALL_MIGRATIONS, DIALECTS, freshDatabase } from "./support/databases.js";
import { withDatabase } from "./support/tables.js";

const { seedTestData, clearTestData } = localModeOptimizations;
const TINY = { users: 3, briefs: 4, reviews: 5, transactions: 6 };

describe.each(DIALECTS)("%s: localModeOptimizations", (dialect) => {
  it("seedTestData reports progress table by table up to every row", async () => {
    const url = await freshDatabase(dialect);
    const events: SeedProgress[] = [];
    const result = await withDatabase(url, (db) => seedTestData(db, { ...TINY, seed: 5, onProgress: (p) => events.push(p) }));
    expect(result).toMatchObject({ seed: 5, sizes: TINY, migrated: ALL_MIGRATIONS, rows: 30 });
    expect(result.counts).toEqual({ models: 12, users: 3, briefs: 4, reviews: 5, token_transactions: 6 });
    expect(events[0]).toEqual({ phase: "replacing", rowsTotal: 30 });
    const done = events.flatMap((e) => (e.phase === "inserting" ? [[e.table, e.done, e.total, e.rowsDone]] : []));
    expect(done).toEqual([
      ["models", 0, 12, 0],
      ["models", 12, 12, 12],
      ["users", 0, 3, 12],
      ["users", 3, 3, 15],
      ["briefs", 0, 4, 15],
      ["briefs", 4, 4, 19],
      ["reviews", 0, 5, 19],
      ["reviews", 5, 5, 24],
      ["token_transactions", 0, 6, 24],
      ["token_transactions", 6, 6, 30],
    ]);
    const cleared = await withDatabase(url, (db) => clearTestData(db));
    expect(cleared).toEqual({
      all: false,
      counts: { models: 12, users: 3, briefs: 4, reviews: 5, token_transactions: 6, token_holds: 0, query_log: 0 },
      detachedLedgerRows: 0,
    });
  });

  it("rejects bad sizes with USAGE before touching the database", async () => {
    const url = await freshDatabase(dialect);
    await withDatabase(url, async (db) => {
      await expect(seedTestData(db, { users: -1 })).rejects.toMatchObject({ code: "USAGE" });
      await expect(seedTestData(db, { briefs: 2.5 })).rejects.toMatchObject({ code: "USAGE" });
      await expect(seedTestData(db, { users: 2, briefs: 0, reviews: 1 })).rejects.toMatchObject({
        code: "USAGE",
        message: "reviews need at least one brief",
      });
      // @ts-expect-error: an unknown scale from an untyped caller
      await expect(seedTestData(db, { scale: "huge" })).rejects.toMatchObject({ code: "USAGE" });
      await expect(seedTestData(db, { seed: -3 })).rejects.toMatchObject({ code: "USAGE" });
      expect(await db.tableExists("users")).toBe(false);
    });
  });
});

describe("the local rule guards the library", () => {
  const savedEnv = process.env.NODE_ENV;
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = savedEnv;
  });

  it("seedTestData and clearTestData refuse a remote PostgreSQL target before any query", async () => {
    const db = await openDatabase("postgres://u:pw@db.example.invalid/x");
    try {
      for (const run of [() => seedTestData(db), () => clearTestData(db), () => clearTestData(db, { all: true })]) {
        const error = await run().catch((caught: unknown) => caught);
        expect(error).toMatchObject({ code: "NOT_LOCAL" });
        expect((error as Error).message).toContain("postgres://u:***@db.example.invalid/x");
        expect((error as Error).message).not.toContain("pw@");
      }
    } finally {
      await db.close();
    }
  });

  it("nothing is local while NODE_ENV=production, not even a SQLite file", async () => {
    const url = `file:${join(mkdtempSync(join(tmpdir(), "briefdb-test-")), "prod.db")}`;
    await withDatabase(url, async (db) => {
      process.env.NODE_ENV = "production";
      await expect(seedTestData(db, TINY)).rejects.toMatchObject({ code: "NOT_LOCAL" });
      await expect(clearTestData(db)).rejects.toMatchObject({ code: "NOT_LOCAL" });
      delete process.env.NODE_ENV;
      expect(await db.tableExists("users")).toBe(false);
    });
  });
});
