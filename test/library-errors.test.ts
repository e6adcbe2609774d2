/**
 * The library's contract (docs/library.md, docs/architecture.md "Exit codes"): every exported
 * function that talks to the database fails with a BriefdbError whose code is in EXIT_CODES, the
 * driver's error kept as `cause` — never a raw driver error — as the CLI's own failures read.
 * PostgreSQL: the server goes away (a loopback proxy resets every connection and refuses new ones)
 * while the call waits on a lock another connection holds, so it is cut mid-statement. SQLite:
 * the write lock is held by another connection and the call gives up on it.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as briefdb from "../src/index.js";
import { BriefdbError, EXIT_CODES, openDatabase, type BriefDatabase } from "../src/index.js";
import { freshDatabase } from "./support/databases.js";
import { startFreezableProxy } from "./support/frozen-proxy.js";
import { openHolder } from "./support/locks.js";
import { destroyTest, initTest, newUser, type TestContext } from "./support/setup.js";

type Call = (db: BriefDatabase) => Promise<unknown>;

/** Each exported function that talks to the database, called as a library user would. */
function calls(userId: string, holdIds: readonly string[]): Record<string, Call> {
  const local = briefdb.localModeOptimizations;
  return {
    migrate: (db) => briefdb.migrate(db),
    assertMigrated: (db) => briefdb.assertMigrated(db),
    migrationStatus: (db) => briefdb.migrationStatus(db),
    checkPendingMigrations: (db) => briefdb.checkPendingMigrations(db),
    getBalance: (db) => briefdb.getBalance(db, userId),
    getHistory: (db) => briefdb.getHistory(db, userId),
    verifyLedger: (db) => briefdb.verifyLedger(db),
    checkHolds: (db) => briefdb.checkHolds(db),
    applyTokenOperation: (db) => briefdb.applyTokenOperation(db, userId, "deduct", 1, "library-errors"),
    atomicTokenOperation: (db) => briefdb.atomicTokenOperation(db, userId, "credit", 1, "library-errors"),
    applyHold: (db) => briefdb.applyHold(db, userId, 1, "library-errors"),
    holdTokens: (db) => briefdb.holdTokens(db, userId, 1, "library-errors"),
    applyCapture: (db) => briefdb.applyCapture(db, holdIds[0]!),
    captureHold: (db) => briefdb.captureHold(db, holdIds[0]!),
    applyRelease: (db) => briefdb.applyRelease(db, holdIds[1]!),
    releaseHold: (db) => briefdb.releaseHold(db, holdIds[1]!),
    getActiveHolds: (db) => briefdb.getActiveHolds(db, userId),
    listHolds: (db) => briefdb.listHolds(db, userId),
    getAvailableBalance: (db) => briefdb.getAvailableBalance(db, userId),
    createUser: (db) => briefdb.createUser(db, { id: "library-errors-new", email: "new@example.test", name: "new", openingBalance: 5 }),
    removeUser: (db) => briefdb.removeUser(db, userId),
    withTransaction: (db) => briefdb.withTransaction(db, (tx) => tx.all(sql`SELECT count(*) FROM users`)),
    runRaceTest: (db) => briefdb.runRaceTest(db, { n: 4, concurrency: 2 }),
    runHttpRace: (db) => briefdb.runHttpRace(db, { userId, n: 1, balance: 10, url: "http://127.0.0.1:9/deduct" }),
    slowQueryReport: (db) => briefdb.slowQueryReport(db),
    probeCanonicalQueries: (db) => briefdb.probeCanonicalQueries(db, { runs: 1 }),
    publishedBriefsByViews: (db) => briefdb.publishedBriefsByViews(db),
    publishedBriefsByDate: (db) => briefdb.publishedBriefsByDate(db),
    userBriefs: (db) => briefdb.userBriefs(db, userId),
    briefReviews: (db) => briefdb.briefReviews(db, "no-such-brief"),
    userTokenHistory: (db) => briefdb.userTokenHistory(db, userId),
    briefBySlug: (db) => briefdb.briefBySlug(db, "no-such-slug"),
    seedTestData: (db) => local.seedTestData(db, { users: 2, briefs: 1, reviews: 1, transactions: 2 }),
    clearTestData: (db) => local.clearTestData(db),
    compactDatabase: (db) => local.compactDatabase(db),
  };
}

/** The failure a call ended with: what it threw, or the error of the Result it returned. */
async function failureOf(call: Promise<unknown>): Promise<unknown> {
  try {
    const value = await call;
    const result = value as { success?: boolean; error?: unknown } | null;
    if (result !== null && typeof result === "object" && result.success === false) return result.error;
    return new Error(`it succeeded: ${JSON.stringify(value)}`);
  } catch (error) {
    return error;
  }
}

/** A BriefdbError with a code of the contract, one of `expected`, its driver's error kept as `cause`. */
function expectContractFailure(failure: unknown, expected: readonly string[]): void {
  expect(failure, String(failure)).toBeInstanceOf(BriefdbError);
  const { code, cause } = failure as BriefdbError;
  expect(Object.keys(EXIT_CODES)).toContain(code);
  expect(expected).toContain(code);
  expect(cause).toBeDefined();
}

describe("postgresql: the server goes away mid-call", () => {
  let t: TestContext;
  let userId: string;
  const holdIds: string[] = [];
  beforeAll(async () => {
    t = await initTest("postgresql");
    userId = await newUser(t.db, { id: "library-errors", balance: 100 });
    for (let i = 0; i < 2; i++) holdIds.push((await briefdb.applyHold(t.db, userId, 1, "library-errors")).holdId);
  });
  afterAll(() => destroyTest(t?.db));

  it.each(Object.keys(calls("", [])))("%s rejects (or returns) a BriefdbError with a code of the contract", async (name) => {
    const proxy = await startFreezableProxy(t.url);
    const db = await openDatabase(proxy.url, { lockTimeoutMs: 0 });
    const holder = await openHolder("postgresql", t.url);
    try {
      const [tables] = await sql_(t.url, "SELECT string_agg(quote_ident(tablename), ', ') AS list FROM pg_tables WHERE schemaname = 'public'");
      await holder.run(`LOCK TABLE ${tables!.list} IN ACCESS EXCLUSIVE MODE`);
      let settled = false;
      const failure = failureOf(calls(userId, holdIds)[name]!(db)).finally(() => (settled = true));
      await untilWaitingOnLock(t.url, () => settled);
      proxy.cut();
      // a read could not reach the server; a write that may have been applied says so
      expectContractFailure(await failure, ["DB_UNREACHABLE", "OUTCOME_UNKNOWN"]);
    } finally {
      await holder.rollback();
      await db.close({ timeoutMs: 0 });
      await proxy.close();
    }
  });
});

describe("sqlite: another connection holds the write lock", () => {
  let t: TestContext;
  let userId: string;
  const holdIds: string[] = [];
  const writers = [
    "migrate",
    "applyTokenOperation",
    "atomicTokenOperation",
    "applyHold",
    "holdTokens",
    "applyCapture",
    "captureHold",
    "applyRelease",
    "releaseHold",
    "createUser",
    "removeUser",
    "seedTestData",
    "clearTestData",
  ];
  beforeAll(async () => {
    t = await initTest("sqlite");
    userId = await newUser(t.db, { id: "library-errors", balance: 100 });
    for (let i = 0; i < 2; i++) holdIds.push((await briefdb.applyHold(t.db, userId, 1, "library-errors")).holdId);
  });
  afterAll(() => destroyTest(t?.db));

  it.each(writers)("%s rejects (or returns) a BriefdbError with a code of the contract", async (name) => {
    const url = name === "migrate" ? await freshDatabase("sqlite") : t.url;
    const db = await openDatabase(url, { lockTimeoutMs: 1 });
    const holder = await openHolder("sqlite", url);
    try {
      expectContractFailure(await failureOf(calls(userId, holdIds)[name]!(db)), ["LOCK_TIMEOUT"]);
    } finally {
      await holder.rollback();
      await db.close();
    }
  });
});

async function sql_(url: string, statement: string): Promise<Array<Record<string, string>>> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await client.unsafe(statement);
  } finally {
    await client.end({ timeout: 1 });
  }
}

/** Resolves once a briefdb session of the database waits on a lock; fails if the call ended first. */
async function untilWaitingOnLock(url: string, settled: () => boolean): Promise<void> {
  for (let tries = 0; tries < 1200; tries++) {
    if (settled()) throw new Error("the call ended before it waited on the lock");
    const [row] = await sql_(
      url,
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'briefdb' AND wait_event_type = 'Lock'",
    );
    if (Number(row?.n) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the call never waited on the lock");
}
