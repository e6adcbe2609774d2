import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  briefBySlug,
  briefReviews,
  flushQueryLog,
  openDatabase,
  publishedBriefsByDate,
  publishedBriefsByViews,
  userBriefs,
  userTokenHistory,
  type BriefDatabase,
} from "../src/index.js";
import { expected, fillListingData } from "../harness/bulk-data.mjs";
import { cli, DIALECTS, pgAdminUrl, type TestDialect } from "./support/databases.js";
import { destroyTest, initTest } from "./support/setup.js";

const SIZES = { users: 500, briefs: 5000, reviews: 5000, transactions: 5000 };
const INTENDED = {
  publishedBriefsByViews: "briefs_published_view_count_idx",
  publishedBriefsByDate: "briefs_published_created_at_idx",
  userBriefs: "briefs_user_id_created_at_idx",
  briefReviews: "reviews_brief_id_created_at_idx",
  userTokenHistory: "token_transactions_user_id_created_at_idx",
  briefBySlug: "briefs_slug_unique",
};
const TABLE = {
  publishedBriefsByViews: "briefs",
  publishedBriefsByDate: "briefs",
  userBriefs: "briefs",
  briefReviews: "reviews",
  userTokenHistory: "token_transactions",
  briefBySlug: "briefs",
};

async function filledDatabase(dialect: TestDialect, sizes: typeof SIZES): Promise<{ url: string; db: BriefDatabase }> {
  const { url, db } = await initTest(dialect);
  await fillListingData(db, sizes);
  await db.exec("ANALYZE"); // what autovacuum would have done by now on a live PostgreSQL
  return { url, db };
}

async function probe(url: string): Promise<Array<Record<string, any>>> {
  const result = await cli(["slow-queries", "--probe", "--runs", "3", "--db", url, "--json"]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  expect(result.json?.probed).toBe(true);
  return result.json?.probes;
}

const ids = (rows: Array<{ id: string }>) => rows.map((row) => row.id);

/** Plan lines as each dialect writes them, and what they must be read as. */
const PLANS: Record<TestDialect, Array<[string[], Record<string, unknown>]>> = {
  sqlite: [
    [
      ["SEARCH briefs USING INDEX briefs_user_id_idx (user_id=?)", "USE TEMP B-TREE FOR ORDER BY"],
      { usesIndex: true, fullScans: [], indexes: ["briefs_user_id_idx"], sorts: true },
    ],
    [["SCAN briefs"], { usesIndex: false, fullScans: ["briefs"], indexes: [], sorts: false }],
    [["SCAN TABLE reviews AS r", "USE TEMP B-TREE FOR LAST TERM OF ORDER BY"], { usesIndex: false, fullScans: ["reviews"], sorts: true }],
    [["SEARCH reviews USING AUTOMATIC COVERING INDEX (brief_id=?)"], { usesIndex: false, fullScans: ["reviews"], indexes: [] }],
    [["SEARCH briefs USING INTEGER PRIMARY KEY (rowid=?)"], { usesIndex: true, indexes: ["PRIMARY KEY"] }],
    [["SCAN briefs USING COVERING INDEX briefs_view_count_idx"], { usesIndex: true, indexes: ["briefs_view_count_idx"], sorts: false }],
    [["SCAN CONSTANT ROW"], { usesIndex: false, fullScans: [], indexes: [] }],
  ],
  postgresql: [
    [
      [
        "Limit  (cost=38.58..38.61 rows=13 width=181)",
        "  ->  Sort  (cost=38.58..38.61 rows=13 width=181)",
        "        Sort Key: created_at DESC",
        "        ->  Bitmap Heap Scan on briefs  (cost=4.38..38.34 rows=13 width=181)",
        "              ->  Bitmap Index Scan on briefs_user_id_idx  (cost=0.00..4.38 rows=13 width=0)",
      ],
      { usesIndex: true, fullScans: [], indexes: ["briefs_user_id_idx"], sorts: true },
    ],
    [
      ["Gather  (cost=1000.00..2000.00 rows=1 width=8)", "  ->  Parallel Seq Scan on briefs  (cost=0.00..1000.00 rows=1 width=8)"],
      { usesIndex: false, fullScans: ["briefs"], indexes: [], sorts: false },
    ],
    [["Index Only Scan Backward using briefs_view_count_idx on briefs  (cost=0.29..8.31 rows=1 width=4)"], { usesIndex: true, indexes: ["briefs_view_count_idx"] }],
    [["Incremental Sort  (cost=1.00..2.00 rows=1 width=8)", "  Sort Key: a, b"], { usesIndex: false, sorts: true }],
  ],
};

describe.each(DIALECTS)("%s: canonical listings and --probe", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await filledDatabase(dialect, SIZES));
  });
  afterAll(async () => {
    await db.close();
  });

  it("the listing functions return exactly the rows each page asks for", async () => {
    const published = Array.from({ length: SIZES.briefs }, (_, k) => k + 1).filter(expected.published);
    const byViews = [...published].sort((a, b) => expected.viewCount(b) - expected.viewCount(a)).slice(0, 5);
    const top = await publishedBriefsByViews(db, { limit: 5 });
    expect(ids(top)).toEqual(byViews.map((i) => `brief-${i}`));
    const [first] = byViews;
    if (first === undefined) throw new Error("the listing data has no published brief");
    expect(top[0]).toEqual({
      id: `brief-${first}`,
      slug: `brief-${first}`,
      title: `Brief ${first}`,
      userId: expected.briefUser(first, SIZES.users),
      modelId: `model-${1 + (first % 2)}`,
      published: true,
      viewCount: expected.viewCount(first),
      createdAt: expected.createdAt(first),
    });
    expect(ids(await publishedBriefsByDate(db, { limit: 3 }))).toEqual(["brief-5000", "brief-4999", "brief-4997"]);
    expect(ids(await userBriefs(db, "user-2", { limit: 3 }))).toEqual(["brief-4501", "brief-4001", "brief-3501"]);
    expect(await briefReviews(db, "brief-1")).toEqual([
      { id: "review-5000", briefId: "brief-1", userId: "user-1", rating: 1, comment: "ok", createdAt: expected.createdAt(5000) },
    ]);
    expect(await userTokenHistory(db, "user-3", { limit: 2 })).toEqual(
      [4502, 4002].map((i) => ({
        id: `tx-${i}`,
        userId: "user-3",
        amount: expected.ledgerAmount(i),
        type: "credit",
        reason: "listing data",
        briefId: null,
        balanceAfter: i,
        idempotencyKey: null,
        holdId: null,
        createdAt: expected.createdAt(i),
      })),
    );
    expect(await briefBySlug(db, "brief-7")).toMatchObject({ id: "brief-7", content: "Content of brief 7", published: true });
    expect(await briefBySlug(db, "no-such-brief")).toBeNull();
    await expect(userBriefs(db, "user-2", { limit: 0 })).rejects.toMatchObject({ code: "USAGE" });
  });

  it("each listing runs inside monitorQuery under its own name", async () => {
    const messages: string[] = [];
    await publishedBriefsByViews(db, { monitor: { db, warnMs: 0, logger: (message) => messages.push(message) } });
    expect(messages).toEqual([expect.stringMatching(/^\[briefdb\] query "publishedBriefsByViews" took /)]);
    await flushQueryLog();
    const report = await cli(["slow-queries", "--db", url, "--json"]);
    expect(report.json?.recorded.map((row: { name: string; count: number }) => [row.name, row.count])).toEqual([["publishedBriefsByViews", 1]]);
  });

  it("--probe reads every canonical query through an index on the migrated schema", async () => {
    const probes = await probe(url);
    expect(probes.map((p) => [p.name, p.parameter, p.rows, p.runs])).toEqual([
      ["publishedBriefsByViews", null, 20, 3],
      ["publishedBriefsByDate", null, 20, 3],
      ["userBriefs", "user-1", 10, 3],
      ["briefReviews", "brief-1", 1, 3],
      ["userTokenHistory", "user-1", 10, 3],
      ["briefBySlug", "brief-5000", 1, 3],
    ]);
    for (const p of probes) {
      const name = p.name as keyof typeof INTENDED;
      expect({ name, usesIndex: p.usesIndex, fullScans: p.fullScans, suggestion: p.suggestion, note: p.note }).toEqual({
        name,
        usesIndex: true,
        fullScans: [],
        suggestion: null,
        note: null,
      });
      expect(p.index.name).toBe(INTENDED[name]);
      expect(p.plan.join("\n")).toContain(p.indexes[0]);
      expect(p.p95Ms).toBeGreaterThanOrEqual(p.p50Ms);
      // SQLite takes the schema's composite index every time; PostgreSQL's planner weighs its
      // statistics and may walk another index of the same table (created_at, filtering).
      if (dialect === "sqlite") expect(p.indexes).toEqual([INTENDED[name]]);
      else for (const index of p.indexes) expect(index.startsWith(`${TABLE[name]}_`)).toBe(true);
    }
    const human = await cli(["slow-queries", "--probe", "--runs", "3", "--db", url]);
    expect(human.stdout).toContain("probes (3 timed runs each)");
    expect(human.stdout).toMatch(/briefBySlug\s+│\s+1\s+│\s+[\d.]+\s+│\s+[\d.]+\s+│\s+index briefs_slug_unique/);
    expect(human.stdout).not.toContain("FULL SCAN");
  });

  it("a missing index shows as a full scan with the CREATE INDEX that fixes it", async () => {
    const small = await filledDatabase(dialect, { users: 50, briefs: 500, reviews: 2000, transactions: 10 });
    try {
      await small.db.exec(
        "DROP INDEX reviews_brief_id_created_at_idx; DROP INDEX reviews_brief_id_idx; DROP INDEX reviews_created_at_idx",
      );
      const reviews = (await probe(small.url)).find((p) => p.name === "briefReviews");
      expect(reviews).toMatchObject({
        usesIndex: false,
        fullScans: ["reviews"],
        indexes: [],
        suggestion: "CREATE INDEX reviews_brief_id_created_at_idx ON reviews (brief_id, created_at)",
        note: "reviews_brief_id_created_at_idx is missing: the query reads every row of reviews",
      });
      const human = await cli(["slow-queries", "--probe", "--runs", "1", "--db", small.url]);
      expect(human.stdout).toMatch(/briefReviews .*│ FULL SCAN reviews/);
      expect(human.stdout).toContain("fix: CREATE INDEX reviews_brief_id_created_at_idx ON reviews (brief_id, created_at)");

      await small.db.exec(`${reviews?.suggestion}; ANALYZE reviews`);
      const fixed = (await probe(small.url)).find((p) => p.name === "briefReviews");
      expect(fixed).toMatchObject({ usesIndex: true, indexes: ["reviews_brief_id_created_at_idx"], suggestion: null });
    } finally {
      await small.db.close();
    }
  });

  it("reads the dialect's plan lines: index, full scan, sort", () => {
    for (const [plan, reading] of PLANS[dialect]) expect(db.inspector.readPlan(plan), plan.join(" / ")).toMatchObject(reading);
  });

  it("knows which indexes exist", async () => {
    expect(await db.inspector.indexExists("briefs_slug_unique")).toBe(true);
    expect(await db.inspector.indexExists("briefs_no_such_idx")).toBe(false);
    expect(await db.inspector.indexExists("briefs")).toBe(false); // a table is not an index
  });

  if (dialect === "postgresql") {
    it("a full scan despite the index suggests ANALYZE, not a second CREATE INDEX", async () => {
      const name = new URL(url).pathname.slice(1);
      const admin = await openDatabase(pgAdminUrl(), { poolSize: 1 });
      try {
        // New sessions on this database only: the CLI's connections plan without index scans.
        await admin.exec(`ALTER DATABASE ${name} SET enable_indexscan = off; ALTER DATABASE ${name} SET enable_bitmapscan = off`);
        const slug = (await probe(url)).find((p) => p.name === "briefBySlug");
        expect(slug).toMatchObject({
          usesIndex: false,
          fullScans: ["briefs"],
          suggestion: "ANALYZE briefs",
          note: expect.stringMatching(/^briefs_slug_unique exists but the planner read briefs whole: /),
        });
      } finally {
        await admin.exec(`ALTER DATABASE ${name} RESET enable_indexscan; ALTER DATABASE ${name} RESET enable_bitmapscan`);
        await admin.close();
      }
      const [setting] = await db.all<{ enable_indexscan: string }>(sql`SHOW enable_indexscan`);
      expect(setting?.enable_indexscan).toBe("on"); // this file's own connections were never affected
    });
  }

  it("--probe on a migrated, empty database still shows every plan, with no parameters", async () => {
    const { url: empty, db: emptyDb } = await initTest(dialect);
    await destroyTest(emptyDb);
    const probes = await probe(empty);
    expect(probes.map((p) => [p.name, p.parameter, p.rows])).toEqual(Object.keys(INTENDED).map((name) => [name, null, 0]));
    for (const p of probes) expect(p.plan.length).toBeGreaterThan(0);
  });
});
