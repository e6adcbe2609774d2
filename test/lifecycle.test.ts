/**
 * The database object's life, on both dialects: a call after close(), a transaction handle used
 * after its transaction, close() while a transaction's operation never resolves; on PostgreSQL the
 * pool: a call that could only wait for the transaction it comes from, a wait for a connection
 * that every transaction holds, close() after a connection fault.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  atomicTokenOperation,
  getBalance,
  holdTokens,
  openDatabase,
  withTransaction,
  type BriefDatabase,
  type Transaction,
} from "../src/index.js";
import { DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";

/** The code a promise rejects with, or "resolved". */
const codeOf = (work: Promise<unknown>) =>
  work.then(
    () => "resolved",
    (error: { code?: string }) => error.code,
  );

const countRows = async (db: BriefDatabase, reason: string) => {
  const [row] = await db.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM token_transactions WHERE reason = ${reason}`);
  return Number(row?.n);
};

describe.each(DIALECTS)("%s: the database object's life", (dialect) => {
  let url: string;
  let setup: BriefDatabase;

  beforeAll(async () => {
    ({ url, db: setup } = await initTest(dialect));
  });
  afterAll(() => destroyTest(setup));

  it("every call after close() is CLOSED (exit 2), the same on both dialects; nothing changed", async () => {
    const user = await newUser(setup, { balance: 10 });
    const db = await openDatabase(url);
    await db.close();
    expect(await codeOf(db.all(sql`SELECT 1`))).toBe("CLOSED");
    expect(await codeOf(getBalance(db, user))).toBe("CLOSED");
    const deduct = await atomicTokenOperation(db, user, "deduct", 1, "after close");
    const unbatched = await atomicTokenOperation(db, user, "credit", 1, "after close", { idempotencyKey: `late-${dialect}` });
    const hold = await holdTokens(db, user, 1, "after close");
    const transaction = await withTransaction(db, async (tx) => tx.run(sql`DELETE FROM users`));
    for (const result of [deduct, unbatched, hold, transaction]) {
      expect(result).toMatchObject({ success: false, error: { code: "CLOSED", message: expect.stringMatching(/closed \(db\.close\(\)\).*nothing changed/) } });
      if (!result.success) expect(result.error.exitCode).toBe(2);
    }
    expect(await getBalance(setup, user)).toBe(10);
    expect(await countRows(setup, "after close")).toBe(0);
  });

  it("a tx kept from a finished withTransaction is refused (USAGE) wherever it is used; nothing changed", async () => {
    const user = await newUser(setup, { balance: 10 });
    let kept: Transaction | undefined;
    expect(await withTransaction(setup, async (tx) => void (kept = tx))).toEqual({ success: true, data: undefined });
    const stale = kept as Transaction;
    for (const operation of ["credit", "deduct"] as const) {
      const result = await atomicTokenOperation(setup, user, operation, 3, "stale tx", { transaction: stale });
      expect(result).toMatchObject({ success: false, error: { code: "USAGE", message: expect.stringMatching(/transaction has ended.*nothing changed/) } });
    }
    expect(await codeOf(stale.run(sql`DELETE FROM users WHERE id = ${user}`))).toBe("USAGE");
    expect(() => (stale.drizzle as { select: unknown }).select).toThrow(/transaction has ended/);
    expect(await getBalance(setup, user)).toBe(10);
    expect(await countRows(setup, "stale tx")).toBe(0);
  });

  it("close() while a transaction's operation never resolves ends in its grace: the transaction is rolled back and answers CLOSED", async () => {
    const user = await newUser(setup, { balance: 10 });
    const db = await openDatabase(url);
    let inside!: () => void;
    const begun = new Promise<void>((resolve) => (inside = resolve));
    const hung = withTransaction(db, async (tx) => {
      await atomicTokenOperation(db, user, "credit", 5, "hung transaction", { transaction: tx });
      inside();
      await new Promise(() => {}); // never resolves
    });
    await begun;
    await db.close({ timeoutMs: 200 });
    const result = await hung;
    expect(result).toMatchObject({
      success: false,
      error: { code: "CLOSED", message: expect.stringMatching(/still running: the transaction was rolled back; nothing changed/) },
    });
    expect(await getBalance(setup, user)).toBe(10);
    expect(await countRows(setup, "hung transaction")).toBe(0);
  });
});

describe("postgresql: waiting for a pooled connection", () => {
  let url: string;
  let setup: BriefDatabase;

  beforeAll(async () => {
    ({ url, db: setup } = await initTest("postgresql"));
  });
  afterAll(() => destroyTest(setup));

  it("poolSize 1: a call on db inside withTransaction is POOL_DEADLOCK at once (a nested withTransaction and a token change too); the database works after", async () => {
    const user = await newUser(setup, { balance: 10 });
    const db = await openDatabase(url, { poolSize: 1 });
    try {
      const result = await withTransaction(db, async (tx) => {
        await tx.run(sql`UPDATE users SET name = 'inside' WHERE id = ${user}`);
        const query = await codeOf(db.all(sql`SELECT 1`));
        const nested = await withTransaction(db, async (inner) => inner.all(sql`SELECT 1`));
        const deduct = await atomicTokenOperation(db, user, "deduct", 1, "deadlocked");
        const keyed = await atomicTokenOperation(db, user, "deduct", 1, "deadlocked", { idempotencyKey: "deadlocked-1" });
        const hold = await holdTokens(db, user, 1, "deadlocked");
        const codes = [nested, deduct, keyed, hold].map((r) => (r.success ? "success" : r.error.code));
        // tx itself is the way in
        const viaTx = await atomicTokenOperation(db, user, "deduct", 2, "inside", { transaction: tx });
        return { query, codes, viaTx: viaTx.success };
      });
      expect(result).toEqual({
        success: true,
        data: { query: "POOL_DEADLOCK", codes: ["POOL_DEADLOCK", "POOL_DEADLOCK", "POOL_DEADLOCK", "POOL_DEADLOCK"], viaTx: true },
      });
      expect(await getBalance(db, user)).toBe(8);
      expect(await countRows(db, "deadlocked")).toBe(0);
    } finally {
      await db.close();
    }
  });

  it("a call that finds every connection held by transactions waits poolTimeoutMs, then is POOL_TIMEOUT; nothing sent, nothing changed", async () => {
    const user = await newUser(setup, { balance: 10 });
    const db = await openDatabase(url, { poolSize: 2, poolTimeoutMs: 300 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let ready = 0;
    let bothIn!: () => void;
    const inside = new Promise<void>((resolve) => (bothIn = resolve));
    const holders = [0, 1].map(() =>
      withTransaction(db, async (tx) => {
        await tx.all(sql`SELECT 1`);
        if (++ready === 2) bothIn();
        await held;
      }),
    );
    try {
      await inside;
      const query = await codeOf(db.all(sql`SELECT 1`));
      const credit = await atomicTokenOperation(db, user, "credit", 5, "timed out");
      const transaction = await withTransaction(db, async (tx) => tx.run(sql`DELETE FROM users WHERE id = ${user}`));
      expect([query, credit.success ? "success" : credit.error.code, transaction.success ? "success" : transaction.error.code]).toEqual([
        "POOL_TIMEOUT",
        "POOL_TIMEOUT",
        "POOL_TIMEOUT",
      ]);
      if (!credit.success) expect(credit.error.message).toMatch(/within 300 ms: the call was not sent; nothing changed/);
    } finally {
      release();
      await Promise.all(holders);
    }
    expect(await getBalance(db, user)).toBe(10);
    expect(await countRows(db, "timed out")).toBe(0);
    await db.close();
  });

  it("close() after a connection fault does not wait for postgres.js's end timeout when nothing is pending", async () => {
    const db = await openDatabase(url);
    const killer = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const sleeping = codeOf(db.all(sql`SELECT pg_sleep(60) AS slept`));
      for (;;) {
        const [row] = await killer<Array<{ n: string }>>`
          SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(60)%' AND pid <> pg_backend_pid()`;
        if (Number(row?.n) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await sleeping).not.toBe("resolved"); // its caller is answered
      const started = performance.now();
      await db.close();
      // the fault left postgres.js's connection thinking a query was still running: its end()
      // waited its whole timeout (5 s), which close() passed on
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      await killer.end();
    }
  });
});
