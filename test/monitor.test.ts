import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  flushQueryLog,
  monitorQuery,
  openDatabase,
  slowQueryReport,
  type BriefDatabase,
  type SlowQueryAggregate,
} from "../src/index.js";
import { cli, DIALECTS, freshDatabase } from "./support/databases.js";
import { destroyTest, initTest } from "./support/setup.js";

/**
 * A unit of work that takes exactly `ms` on the clock monitorQuery reads. That clock
 * (process.hrtime) is faked for these tests and moves only here, so every duration, and so every
 * threshold crossed, is what the test says, however loaded the machine is.
 */
async function after<T>(ms: number, value: T): Promise<T> {
  vi.advanceTimersByTime(ms);
  return value;
}

async function recorded(db: BriefDatabase): Promise<SlowQueryAggregate[]> {
  await flushQueryLog();
  return [...(await slowQueryReport(db)).recorded];
}

describe.each(DIALECTS)("%s: monitorQuery", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(async () => {
    await flushQueryLog();
    await destroyTest(db);
  });
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["hrtime"] }); // timers, Date and I/O stay real
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("records samples of 650 ms and 1100 ms, warns about both, and leaves a fast one out", async () => {
    const messages: string[] = [];
    const logger = (message: string) => messages.push(message);
    // one after the other: the fake clock is shared, so overlapping samples would add up
    const results = [
      await monitorQuery("briefs.warn", () => after(650, "warned"), { db, logger }),
      await monitorQuery("briefs.slow", () => after(1100, "slow"), { db, logger }),
      await monitorQuery("briefs.fast", () => after(5, "fast"), { db, logger }),
    ];
    expect(results).toEqual(["warned", "slow", "fast"]);
    expect(messages).toEqual([
      '[briefdb] query "briefs.warn" took 650 ms (warn at ≥ 500 ms)',
      '[briefdb] slow query "briefs.slow" took 1100 ms (slow at ≥ 1000 ms)',
    ]);

    await flushQueryLog();
    const report = await cli(["slow-queries", "--db", url, "--json"]);
    expect(report.code).toBe(0);
    const rows = (report.json?.recorded as Array<Record<string, any>>).filter((row) => row.name.startsWith("briefs."));
    expect(rows.map((row) => [row.name, row.count, row.failed, row.p50Ms, row.p95Ms, row.maxMs])).toEqual([
      ["briefs.slow", 1, 0, 1100, 1100, 1100],
      ["briefs.warn", 1, 0, 650, 650, 650],
    ]);
  });

  it("passes a thrown error through unchanged and records the slow sample as failed", async () => {
    const messages: string[] = [];
    const options = { db, warnMs: 20, logger: (message: string) => messages.push(message) };
    const boom = new Error("the listing broke");
    await expect(monitorQuery("failing.late", () => after(40, null).then(() => Promise.reject(boom)), options)).rejects.toBe(boom);
    await expect(
      monitorQuery(
        "failing.sync",
        () => {
          throw boom;
        },
        options,
      ),
    ).rejects.toBe(boom);
    await expect(monitorQuery("failing.value", () => Promise.reject("not an Error"), options)).rejects.toBe("not an Error");

    const rows = (await recorded(db)).filter((row) => row.name.startsWith("failing."));
    expect(rows.map((row) => [row.name, row.count, row.failed])).toEqual([["failing.late", 1, 1]]);
    expect(messages).toEqual(['[briefdb] query "failing.late" took 40 ms and failed (warn at ≥ 20 ms)']);
  });

  it("takes its thresholds from the options", async () => {
    const messages: string[] = [];
    const logger = (message: string) => messages.push(message);
    await monitorQuery("configured.warn", () => after(40, 1), { db, logger, warnMs: 20, slowMs: 600_000 });
    await monitorQuery("configured.slow", () => after(40, 2), { db, logger, warnMs: 10, slowMs: 20 });
    await monitorQuery("configured.quiet", () => after(5, 3), { db, logger, warnMs: 60_000, slowMs: 60_000 });
    expect(messages).toEqual([
      '[briefdb] query "configured.warn" took 40 ms (warn at ≥ 20 ms)',
      '[briefdb] slow query "configured.slow" took 40 ms (slow at ≥ 20 ms)',
    ]);
    const names = (await recorded(db)).map((row) => row.name).filter((name) => name.startsWith("configured."));
    expect(names.sort()).toEqual(["configured.slow", "configured.warn"]);
  });

  it("is quiet under NODE_ENV=production but still records", async () => {
    const messages: string[] = [];
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = "production";
    try {
      await monitorQuery("production.slow", () => after(40, 1), { db, warnMs: 10, slowMs: 20, logger: (m) => messages.push(m) });
    } finally {
      process.env.NODE_ENV = previous;
    }
    expect(messages).toEqual([]);
    const names = (await recorded(db)).map((row) => row.name);
    expect(names).toContain("production.slow");
  });

  it("records in the background: a failed write is reported to the logger, never to the caller", async () => {
    const unmigrated = await openDatabase(await freshDatabase(dialect));
    try {
      const messages: string[] = [];
      const result = await monitorQuery("lost.sample", () => after(30, "still here"), {
        db: unmigrated,
        warnMs: 10,
        logger: (message) => messages.push(message),
      });
      expect(result).toBe("still here");
      // The caller resumes before the write is even attempted.
      expect(messages).toEqual(['[briefdb] query "lost.sample" took 30 ms (warn at ≥ 10 ms)']);
      await flushQueryLog();
      expect(messages).toHaveLength(2);
      expect(messages[1]).toMatch(/^\[briefdb\] could not record query "lost\.sample" in the query log: .*query_log/);
    } finally {
      await unmigrated.close();
    }
  });

  it("close() waits for the samples still being written: closing right after a slow call loses nothing", async () => {
    const own = await openDatabase(url);
    const messages: string[] = [];
    const result = await monitorQuery("closing.sample", () => after(30, "done"), {
      db: own,
      warnMs: 10,
      logger: (message) => messages.push(message),
    });
    // No flushQueryLog(): the write has not even started when close() is called.
    await own.close();
    expect(result).toBe("done");
    expect(messages).toEqual([expect.stringMatching(/^\[briefdb\] query "closing\.sample" took /)]);
    const reopened = await openDatabase(url);
    try {
      const rows = await reopened.all<{ name: string }>(sql`SELECT name FROM query_log WHERE name = ${"closing.sample"}`);
      expect(rows).toEqual([{ name: "closing.sample" }]);
    } finally {
      await reopened.close();
    }
  });

  it("a logger that throws does not turn a success into a failure", async () => {
    const logger = () => {
      throw new Error("logger down");
    };
    await expect(monitorQuery("logger.throws", () => after(30, "ok"), { warnMs: 10, logger })).resolves.toBe("ok");
  });

  it("refuses bad options before running the work", async () => {
    let ran = 0;
    const work = () => ++ran;
    for (const [name, options] of [
      ["q", { warnMs: 2000, slowMs: 1000 }],
      ["q", { warnMs: -1 }],
      ["q", { slowMs: Number.NaN }],
      ["  ", {}],
    ] as const) {
      await expect(monitorQuery(name, work, options)).rejects.toMatchObject({ name: "BriefdbError", code: "USAGE" });
    }
    expect(ran).toBe(0);
  });
});
