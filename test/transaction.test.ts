import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  atomicTokenOperation,
  BriefdbError,
  withTransaction,
  type BriefDatabase,
  type Executor,
  type TransactionOptions,
} from "../src/index.js";
import { DIALECTS } from "./support/databases.js";
import { destroyTest, initTest } from "./support/setup.js";

const now = Date.now();

describe.each(DIALECTS)("%s: withTransaction", (dialect) => {
  let db: BriefDatabase;
  const at = (ms: number) => (dialect === "sqlite" ? ms : new Date(ms).toISOString());

  beforeAll(async () => {
    ({ db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  const insertUser = (id: string, balance = 0) =>
    sql`INSERT INTO users (id, email, name, token_balance, created_at, updated_at)
        VALUES (${id}, ${`${id}@example.test`}, ${id}, ${balance}, ${at(now)}, ${at(now)})`;
  const balanceOf = async (id: string) => {
    const rows = await db.all<{ token_balance: number | string }>(sql`SELECT token_balance FROM users WHERE id = ${id}`);
    return rows[0] === undefined ? undefined : Number(rows[0].token_balance);
  };

  it("commits and returns { success: true, data }", async () => {
    const result = await withTransaction(db, async (tx) => {
      await tx.run(insertUser("tx-commit", 5));
      return "done";
    });
    expect(result).toEqual({ success: true, data: "done" });
    expect(await balanceOf("tx-commit")).toBe(5);
  });

  it("rolls back everything and returns a typed error when the operation throws", async () => {
    const result = await withTransaction(db, async (tx) => {
      await tx.run(insertUser("tx-rollback", 5));
      await tx.run(sql`UPDATE users SET token_balance = -1 WHERE id = ${"tx-rollback"}`); // CHECK violation
      return "unreachable";
    });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.error.code).toBe("DB_ERROR");
    expect(result.error.message).toMatch(/check/i);
    expect(await balanceOf("tx-rollback")).toBeUndefined();
  });

  it("the database itself, a token change and a nested withTransaction, called inside the operation, finish", async () => {
    // SQLite has one connection: each of these queued behind the transaction that was waiting
    // for them, and the operation never ended (nor did db.close())
    await db.run(insertUser("tx-inner", 10));
    // (on PostgreSQL each is a transaction of its own on another connection: the outer one
    // touches the row last, or the deduct would wait for the outer transaction's row lock)
    const result = await withTransaction(db, async (tx) => {
      const [row] = await db.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM users WHERE id = ${"tx-inner"}`);
      const deducted = await atomicTokenOperation(db, "tx-inner", "deduct", 2, "inside");
      const nested = await withTransaction(db, async (inner) => {
        await inner.run(insertUser("tx-nested", 3));
        return "nested";
      });
      await tx.run(sql`UPDATE users SET token_balance = token_balance + 1 WHERE id = ${"tx-inner"}`);
      return { seen: Number(row?.n), deducted: deducted.success, nested };
    });
    expect(result).toEqual({ success: true, data: { seen: 1, deducted: true, nested: { success: true, data: "nested" } } });
    expect(await balanceOf("tx-inner")).toBe(9);
    expect(await balanceOf("tx-nested")).toBe(3);
  });

  if (dialect === "sqlite") {
    it("a nested withTransaction that fails rolls back its own part only (a savepoint on the one connection)", async () => {
      const result = await withTransaction(db, async (tx) => {
        await tx.run(insertUser("tx-outer-kept", 1));
        const inner = await withTransaction(db, async (nested) => {
          await nested.run(insertUser("tx-inner-undone", 1));
          throw new Error("inner fails");
        });
        return inner.success;
      });
      expect(result).toEqual({ success: true, data: false });
      expect(await balanceOf("tx-outer-kept")).toBe(1);
      expect(await balanceOf("tx-inner-undone")).toBeUndefined();
    });
  }

  it.runIf(dialect === "postgresql")(
    "a deadlock answered as a token operation's BriefdbError and thrown out of the operation runs the transaction again",
    async () => {
      // what atomicTokenOperation inside the app's transaction answers when the server picked it
      // as a deadlock's victim: DB_ERROR, the driver's 40P01 as its cause
      const victim = new BriefdbError("DB_ERROR", "deadlock detected", undefined, {
        cause: Object.assign(new Error("deadlock detected"), { code: "40P01" }),
      });
      let attempts = 0;
      const result = await withTransaction(db, async () => {
        attempts += 1;
        if (attempts === 1) throw victim;
        return "done";
      });
      expect(result).toEqual({ success: true, data: "done" });
      expect(attempts).toBe(2);
    },
  );

  it("maps a missing table to NOT_MIGRATED", async () => {
    const result = await withTransaction(db, (tx) => tx.all(sql`SELECT * FROM no_such_table`));
    expect(result.success).toBe(false);
    if (!result.success) expect(result.error.code).toBe("NOT_MIGRATED");
  });

  it("keeps concurrent read-modify-write transactions apart: no update is lost", async () => {
    await db.run(insertUser("tx-counter", 0));
    // PostgreSQL runs them on separate pooled connections, so the row lock orders them; SQLite has
    // one connection, and its queue alone must keep each transaction whole.
    const lock = dialect === "postgresql" ? sql.raw(" FOR UPDATE") : sql.raw("");
    const increment = () =>
      withTransaction(db, async (tx) => {
        const [row] = await tx.all<{ token_balance: number | string }>(
          sql`SELECT token_balance FROM users WHERE id = ${"tx-counter"}${lock}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 2)); // yield to the other callers mid-transaction
        await tx.run(sql`UPDATE users SET token_balance = ${Number(row!.token_balance) + 1} WHERE id = ${"tx-counter"}`);
      });
    const results = await Promise.all(Array.from({ length: 20 }, increment));
    expect(results.every((r) => r.success)).toBe(true);
    expect(await balanceOf("tx-counter")).toBe(20);
  });

  /** Reads the counter, lets the other callers run, writes what it read + 1: the source document's "before" bug. */
  const readAwaitWrite = async (tx: Executor, id: string, pause: () => Promise<void>) => {
    const [row] = await tx.all<{ token_balance: number | string }>(sql`SELECT token_balance FROM users WHERE id = ${id}`);
    await pause();
    await tx.run(sql`UPDATE users SET token_balance = ${Number(row!.token_balance) + 1} WHERE id = ${id}`);
  };

  it("50 concurrent read–await–write increments without a lock add exactly 50 (serializable by default)", async () => {
    await db.run(insertUser("tx-contended", 0));
    const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 1));
    const results = await Promise.all(
      Array.from({ length: 50 }, () => withTransaction(db, (tx) => readAwaitWrite(tx, "tx-contended", pause))),
    );
    expect(results.filter((r) => !r.success)).toEqual([]);
    expect(await balanceOf("tx-contended")).toBe(50);
  });

  if (dialect === "postgresql") {
    /** Both transactions read before either writes: the interleaving that loses an update. */
    const interleaved = async (id: string, options?: TransactionOptions) => {
      let arrived = 0;
      let bothRead!: () => void;
      const barrier = new Promise<void>((resolve) => (bothRead = resolve));
      let attempts = 0;
      const pause = async () => {
        // only the first attempt of each waits: a retry runs alone
        if (++attempts > 2) return;
        if (++arrived === 2) bothRead();
        await barrier;
      };
      const results = await Promise.all([0, 1].map(() => withTransaction(db, (tx) => readAwaitWrite(tx, id, pause), options)));
      return { allSucceeded: results.every((r) => r.success), attempts, balance: await balanceOf(id) };
    };

    it("the same interleaving under READ COMMITTED loses an update: the isolation option is honoured", async () => {
      await db.run(insertUser("tx-read-committed", 0));
      expect(await interleaved("tx-read-committed", { isolation: "read committed" })).toEqual({
        allSucceeded: true,
        attempts: 2,
        balance: 1,
      });
    });

    it("by default the loser of that interleaving fails with 40001 and runs again: both increments count", async () => {
      await db.run(insertUser("tx-serializable", 0));
      expect(await interleaved("tx-serializable")).toEqual({ allSucceeded: true, attempts: 3, balance: 2 });
    });

    it("retries a serialization failure, then succeeds", async () => {
      let attempts = 0;
      const result = await withTransaction(db, async (tx) => {
        attempts++;
        if (attempts < 3) await tx.exec(`DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$`);
        return attempts;
      });
      expect(result).toEqual({ success: true, data: 3 });
    });

    it("gives up after the bounded number of retries", async () => {
      let attempts = 0;
      const result = await withTransaction(
        db,
        async (tx) => {
          attempts++;
          await tx.exec(`DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$`);
        },
        { retries: 2 },
      );
      expect(result.success).toBe(false);
      expect(attempts).toBe(3);
    });
  }
});
