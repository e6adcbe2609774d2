import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, openDatabase, withTransaction, type BriefDatabase } from "../src/index.js";
import { DIALECTS, freshDatabase } from "./support/databases.js";

const now = Date.now();

describe.each(DIALECTS)("%s: withTransaction", (dialect) => {
  let db: BriefDatabase;
  const at = (ms: number) => (dialect === "sqlite" ? ms : new Date(ms).toISOString());

  beforeAll(async () => {
    db = await openDatabase(await freshDatabase(dialect));
    await migrate(db);
  });
  afterAll(() => db.close());

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

  if (dialect === "postgresql") {
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
