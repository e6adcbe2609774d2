import { writeFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { slowQueryReport } from "../src/index.js";
import { fillQueryLog } from "../harness/bulk-data.mjs";
import { pastMoment } from "../src/commands/parse.js";
import { cli, DIALECTS, freshDatabase } from "./support/databases.js";
import { initTest } from "./support/setup.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

describe.each(DIALECTS)("%s: slow-queries", (dialect) => {
  it("an empty query log says nothing was recorded and exits 0", async () => {
    const { url, db } = await initTest(dialect);
    await db.close();
    const human = await cli(["slow-queries", "--db", url]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^nothing recorded in the query log of .* \(all time\)$/m);
    expect(human.stderr).toBe("");
    const json = await cli(["slow-queries", "--db", url, "--json"]);
    expect(json.code).toBe(0);
    expect(json.json).toMatchObject({ ok: true, since: null, limit: 20, recorded: [], names: 0, probed: false, probes: [] });
  });

  it("an unmigrated database exits 1 with NOT_MIGRATED and one error line", async () => {
    const url = await freshDatabase(dialect);
    if (dialect === "sqlite") writeFileSync(url.slice("file:".length), ""); // an empty file is an empty SQLite database
    for (const args of [[], ["--probe"]]) {
      const result = await cli(["slow-queries", ...args, "--db", url]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(/^error: .* has \d+ pending migrations? \(hint: run `briefdb migrate --db .*` first\)\n$/);
    }
    const json = await cli(["slow-queries", "--db", url, "--json"]);
    expect(json.json).toMatchObject({ ok: false, error: { code: "NOT_MIGRATED" } });
  });

  it("aggregates thousands of samples per name with exact nearest-rank percentiles, slowest p95 first", async () => {
    const { url, db } = await initTest(dialect);
    const atMs = Date.UTC(2025, 5, 1);
    try {
      await fillQueryLog(db, { name: "briefs.search", count: 4000, firstMs: 1, atMs, failedEvery: 10 });
      await fillQueryLog(db, { name: "briefs.listing", count: 1000, firstMs: 600, atMs });
      await fillQueryLog(db, { name: "reviews.listing", count: 1, firstMs: 700, atMs });
    } finally {
      await db.close();
    }
    const result = await cli(["slow-queries", "--db", url, "--json"]);
    expect(result.code).toBe(0);
    expect(result.json?.names).toBe(3);
    // each row's latency histogram holds all its samples; the rest exactly
    for (const row of result.json!.recorded) {
      expect(row.latencyHistogram.reduce((sum: number, b: { count: number }) => sum + b.count, 0)).toBe(row.count);
    }
    expect(result.json?.recorded.map(({ latencyHistogram: _, ...row }: Record<string, unknown>) => row)).toEqual([
      { name: "briefs.search", count: 4000, failed: 400, p50Ms: 2000, p95Ms: 3800, maxMs: 4000, lastSeen: new Date(atMs + 4000 * 1000).toISOString() },
      { name: "briefs.listing", count: 1000, failed: 0, p50Ms: 1099, p95Ms: 1549, maxMs: 1599, lastSeen: new Date(atMs + 1000 * 1000).toISOString() },
      { name: "reviews.listing", count: 1, failed: 0, p50Ms: 700, p95Ms: 700, maxMs: 700, lastSeen: new Date(atMs + 1000).toISOString() },
    ]);

    const limited = await cli(["slow-queries", "--db", url, "--limit", "1", "--json"]);
    expect(limited.json?.recorded.map((row: { name: string }) => row.name)).toEqual(["briefs.search"]);
    expect(limited.json?.names).toBe(3);

    const human = await cli(["slow-queries", "--db", url, "--limit", "2"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/query\s+│\s+count\s+│\s+failed\s+│\s+p50 ms\s+│\s+p95 ms\s+│\s+max ms\s+│\s+spread\s+│\s+last seen/);
    expect(human.stdout).toMatch(/briefs\.search\s+│\s+4000\s+│\s+400\s+│\s+2000\s+│\s+3800\s+│\s+4000\s+│\s+≤1 ▁▁▁▁▁▁▁▁▂▃██ ≤10000\s+│\s+2025-06-01T01:06:40\.000Z/);
    expect(human.stdout).toContain("2 of 3 query names (--limit 2), slowest p95 first");
    expect(human.stdout).not.toContain("reviews.listing");
  });

  it("--since keeps only the samples recorded since then", async () => {
    const { url, db } = await initTest(dialect);
    const now = Date.now();
    try {
      await fillQueryLog(db, { name: "old.listing", count: 3, firstMs: 900, atMs: now - 10 * DAY_MS });
      await fillQueryLog(db, { name: "recent.listing", count: 3, firstMs: 800, atMs: now - 2 * HOUR_MS });
      const names = async (sinceMs: number) =>
        (await slowQueryReport(db, { since: new Date(sinceMs) })).recorded.map((row) => row.name);
      expect(await names(now - 11 * DAY_MS)).toEqual(["old.listing", "recent.listing"]);
      expect(await names(now - 10 * DAY_MS + 3000)).toEqual(["old.listing", "recent.listing"]); // the last old sample, to the ms
      expect(await names(now - 10 * DAY_MS + 3001)).toEqual(["recent.listing"]);
      expect(await names(now - 90 * 60_000)).toEqual([]);
    } finally {
      await db.close();
    }
    const beforeCli = Date.now();
    const [week, isoDay, empty] = await Promise.all([
      cli(["slow-queries", "--db", url, "--since", "7d", "--json"]),
      cli(["slow-queries", "--db", url, "--since", new Date(now - 11 * DAY_MS).toISOString().slice(0, 10), "--json"]),
      cli(["slow-queries", "--db", url, "--since", "90m"]),
    ]);
    expect(week.json?.recorded.map((row: { name: string }) => row.name)).toEqual(["recent.listing"]);
    const afterCli = Date.now();
    // 7 days before the moment the CLI read the clock, which lies between the two readings here
    expect(Date.parse(week.json?.since)).toBeGreaterThanOrEqual(beforeCli - 7 * DAY_MS);
    expect(Date.parse(week.json?.since)).toBeLessThanOrEqual(afterCli - 7 * DAY_MS);
    expect(isoDay.json?.recorded.map((row: { name: string }) => row.name)).toEqual(["old.listing", "recent.listing"]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toMatch(/^nothing recorded in the query log of .* \(since \d{4}-\d\d-\d\dT[\d:.]+Z\)$/m);
  });

  it("refuses a bad --since, --limit or --runs with exit 2 and one error line", async () => {
    const { url, db } = await initTest(dialect);
    await db.close();
    const tomorrow = new Date(Date.now() + DAY_MS).toISOString().slice(0, 10);
    const cases: Array<[string[], RegExp]> = [
      [["--since", "yesterday"], /^error: --since takes a span back from now \(15m, 24h, 7d\) or an ISO date .*, not "yesterday"$/],
      [["--since", "2025-02-30"], /^error: --since takes a span back from now .*, not "2025-02-30"$/],
      [["--since", tomorrow], /^error: --since is in the future: "\d{4}-\d\d-\d\d"$/],
      [["--since", "999999999w"], /^error: --since reaches back before 1970: "999999999w"$/],
      [["--limit", "0"], /^error: --limit takes a whole number from 1 to 1000, not "0"$/],
      [["--limit", "abc"], /^error: --limit takes a whole number from 1 to 1000, not "abc"/],
      [["--runs", "5"], /^error: --runs goes with --probe$/],
      [["--probe", "--runs", "0"], /^error: --runs takes a whole number from 1 to 10000, not "0"/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(["slow-queries", "--db", url, ...args])));
    results.forEach((result, k) => {
      const [args, message] = cases[k] ?? [[], /^$/];
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(result.stderr.trimEnd()).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    });
    const json = await cli(["slow-queries", "--db", url, "--limit", "0", "--json"]);
    expect(json.json).toMatchObject({ ok: false, error: { code: "USAGE" } });
  });

  if (dialect === "postgresql") {
    it("shows pg_stat_statements when the extension is there, and a one-line hint when it is not", async () => {
      const { url, db } = await initTest(dialect);
      try {
        const without = await cli(["slow-queries", "--db", url, "--json"]);
        expect(without.json?.statements).toEqual({
          available: false,
          source: "pg_stat_statements",
          hint: expect.stringMatching(/^pg_stat_statements is not installed in this database: .*CREATE EXTENSION pg_stat_statements$/),
        });
        const human = await cli(["slow-queries", "--db", url]);
        expect(human.stdout).toMatch(/^pg_stat_statements: pg_stat_statements is not installed in this database: .*$/m);

        await db.run(sql`CREATE EXTENSION pg_stat_statements`);
        const [preload] = await db.all<{ shared_preload_libraries: string }>(sql`SHOW shared_preload_libraries`);
        const withIt = await cli(["slow-queries", "--db", url, "--limit", "5", "--json"]);
        if (preload?.shared_preload_libraries.includes("pg_stat_statements")) {
          expect(withIt.json?.statements).toMatchObject({ available: true, source: "pg_stat_statements" });
          const statements = withIt.json?.statements.statements as Array<Record<string, unknown>>;
          expect(statements.length).toBeGreaterThan(0);
          expect(statements.length).toBeLessThanOrEqual(5);
          expect(Object.keys(statements[0] ?? {}).sort()).toEqual(["calls", "meanMs", "query", "rows", "totalMs"]);
          const table = await cli(["slow-queries", "--db", url]);
          expect(table.stdout).toMatch(/^pg_stat_statements: costliest statements$/m);
        } else {
          // A server from BRIEFDB_TEST_PG_URL without the preload: the extension exists but cannot be read.
          expect(withIt.json?.statements).toMatchObject({ available: false, hint: expect.stringMatching(/shared_preload_libraries/) });
        }
      } finally {
        await db.close();
      }
    });
  } else {
    it("SQLite keeps no statement statistics: no section, no hint", async () => {
      const { url, db } = await initTest(dialect);
      await db.close();
      const result = await cli(["slow-queries", "--db", url, "--json"]);
      expect(result.json?.statements).toBeNull();
      const human = await cli(["slow-queries", "--db", url]);
      expect(human.stdout).not.toContain("pg_stat_statements");
    });
  }
});

describe("--since values", () => {
  const now = Date.UTC(2025, 5, 15, 12, 0, 0);
  const since = pastMoment("--since", () => now);

  it("reads a span back from now in s, m, h, d or w", () => {
    expect(since("90s").getTime()).toBe(now - 90_000);
    expect(since("15m").getTime()).toBe(now - 15 * 60_000);
    expect(since(" 24h ").getTime()).toBe(now - DAY_MS);
    expect(since("7d").getTime()).toBe(now - 7 * DAY_MS);
    expect(since("2w").getTime()).toBe(now - 14 * DAY_MS);
  });

  it("reads an ISO date as UTC midnight and a date-time with its offset", () => {
    expect(since("2025-06-01").toISOString()).toBe("2025-06-01T00:00:00.000Z");
    expect(since("2025-06-01T10:30Z").toISOString()).toBe("2025-06-01T10:30:00.000Z");
    expect(since("2025-06-01T10:30:15.250+02:00").toISOString()).toBe("2025-06-01T08:30:15.250Z");
    expect(since("2024-02-29").toISOString()).toBe("2024-02-29T00:00:00.000Z");
  });

  it("refuses anything else with a USAGE error", () => {
    for (const value of ["", "d", "7days", "-3d", "0m", "1.5h", "5x", "2025-6-1", "2025-02-29", "2025-04-31", "2025-13-01",
      "2025-06-01T25:00", "2025-06-16", "1969-12-31", "999999999w", "yesterday"]) {
      expect(() => since(value), value).toThrow(expect.objectContaining({ code: "USAGE" }));
    }
  });
});
