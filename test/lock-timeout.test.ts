/**
 * A lock another connection holds is waited for a bounded time (issue 9, item 4): PostgreSQL's
 * lock_timeout and SQLite's busy timeout, both set by --lock-timeout / lockTimeoutMs, end in
 * LOCK_TIMEOUT (exit 1) with a hint, and nothing changed.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, openDatabase, type BriefDatabase } from "../src/index.js";
import { cli, DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";
import { openHolder } from "./support/locks.js";

describe.each(DIALECTS)("%s: a lock held elsewhere", (dialect) => {
  let url: string;
  let db: BriefDatabase;
  const state = async (user: string) => {
    const [row] = await db.all<{ b: number | string; n: number | string }>(
      sql`SELECT token_balance AS b, (SELECT count(*) FROM token_transactions WHERE user_id = ${user}) AS n FROM users WHERE id = ${user}`,
    );
    return { balance: Number(row?.b), ledgerRows: Number(row?.n) };
  };
  const holdLock = async (user: string) => {
    const holder = await openHolder(dialect, url);
    if (dialect === "postgresql") await holder.run(`SELECT 1 FROM users WHERE id = '${user}' FOR UPDATE`);
    return holder;
  };

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  it("the CLI gives up after --lock-timeout: LOCK_TIMEOUT, exit 1, a hint, nothing changed", async () => {
    const user = await newUser(db, { balance: 10 });
    const holder = await holdLock(user);
    try {
      const result = await cli(["tokens", "deduct", user, "3", "--lock-timeout", "300", "--db", url, "--json"]);
      expect(result.json?.error).toMatchObject({ code: "LOCK_TIMEOUT", hint: expect.stringContaining("--lock-timeout") });
      expect(result.code).toBe(1);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    } finally {
      await holder.rollback();
    }
    expect(await state(user)).toEqual({ balance: 10, ledgerRows: 1 });
  });

  it("the library's lockTimeoutMs does the same", async () => {
    const user = await newUser(db, { balance: 10 });
    const holder = await holdLock(user);
    const short = await openDatabase(url, { lockTimeoutMs: 200 });
    try {
      const result = await atomicTokenOperation(short, user, "deduct", 3, "waits");
      expect(!result.success && result.error.code).toBe("LOCK_TIMEOUT");
    } finally {
      await short.close();
      await holder.rollback();
    }
    expect(await state(user)).toEqual({ balance: 10, ledgerRows: 1 });
  });

  it("--lock-timeout takes whole milliseconds (0: no limit); anything else is USAGE before connecting", async () => {
    const result = await cli(["tokens", "balance", "nobody", "--lock-timeout", "soon", "--db", url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--lock-timeout takes a whole number/);
  });
});
