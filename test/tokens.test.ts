import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  atomicTokenOperation,
  getBalance,
  getHistory,
  holdTokens,
  verifyLedger,
  type BriefDatabase,
} from "../src/index.js";
import { cli, DIALECTS, spawnCli } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";

describe.each(DIALECTS)("%s: token ledger", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  it("deducts and credits with a ledger row each, and the balance equals the ledger", async () => {
    const user = await newUser(db, { balance: 10 });
    const deducted = await atomicTokenOperation(db, user, "deduct", 3, "brief generation");
    expect(deducted).toMatchObject({ success: true, data: { userId: user, operation: "deduct", amount: 3, balance: 7, replayed: false } });
    const credited = await atomicTokenOperation(db, user, "credit", 5, "top-up");
    expect(credited).toMatchObject({ success: true, data: { balance: 12 } });
    expect(await getBalance(db, user)).toBe(12);
    const history = await getHistory(db, user);
    expect(history.map((e) => [e.type, e.amount, e.balanceAfter, e.reason])).toEqual([
      ["credit", 5, 12, "top-up"],
      ["deduct", -3, 7, "brief generation"],
      ["credit", 10, 10, "opening balance"],
    ]);
    expect((await verifyLedger(db)).drifting).toEqual([]);
  });

  it("refuses an overdraw with INSUFFICIENT_BALANCE and changes nothing", async () => {
    const user = await newUser(db, { balance: 4 });
    const result = await atomicTokenOperation(db, user, "deduct", 5, "too much");
    expect(result.success).toBe(false);
    if (!result.success) expect(result.error.code).toBe("INSUFFICIENT_BALANCE");
    expect(await getBalance(db, user)).toBe(4);
    expect(await getHistory(db, user)).toHaveLength(1);
  });

  it("a NUL character in stored text is USAGE and changes nothing, for deducts, credits and holds alike", async () => {
    const user = await newUser(db, { balance: 10 });
    const codeOf = (result: { success: boolean; error?: { code: string } }) => (result.success ? "ok" : result.error?.code);
    expect(codeOf(await atomicTokenOperation(db, user, "deduct", 1, "bad\u0000reason"))).toBe("USAGE");
    expect(codeOf(await atomicTokenOperation(db, user, "credit", 1, "ok", { idempotencyKey: "k\u0000" }))).toBe("USAGE");
    expect(codeOf(await atomicTokenOperation(db, user, "deduct", 1, "ok", { briefId: "b\u0000" }))).toBe("USAGE");
    expect(codeOf(await atomicTokenOperation(db, `${user}\u0000`, "deduct", 1, "ok"))).toBe("USAGE");
    expect(codeOf(await holdTokens(db, user, 1, "bad\u0000reason"))).toBe("USAGE");
    expect(await getBalance(db, user)).toBe(10);
    expect(await getHistory(db, user)).toHaveLength(1);
  });

  it("an idempotency key or brief id that is not text (JavaScript callers) is USAGE and changes nothing; null means none", async () => {
    const user = await newUser(db, { balance: 10 });
    const codeOf = (result: { success: boolean; error?: { code: string } }) => (result.success ? "ok" : result.error?.code);
    const notText = [42, { key: "k" }, ["k"]] as unknown as string[];
    for (const value of notText) {
      expect(codeOf(await atomicTokenOperation(db, user, "deduct", 1, "ok", { idempotencyKey: value }))).toBe("USAGE");
      expect(codeOf(await atomicTokenOperation(db, user, "credit", 1, "ok", { briefId: value }))).toBe("USAGE");
      expect(codeOf(await holdTokens(db, user, 1, "ok", { idempotencyKey: value }))).toBe("USAGE");
    }
    expect(await getBalance(db, user)).toBe(10);
    expect(await getHistory(db, user)).toHaveLength(1);
    const none = null as unknown as string;
    expect(codeOf(await atomicTokenOperation(db, user, "deduct", 1, "ok", { idempotencyKey: none, briefId: none }))).toBe("ok");
    expect(await getBalance(db, user)).toBe(9);
  });

  it("tells an unknown user (USER_NOT_FOUND) from a poor one", async () => {
    const result = await atomicTokenOperation(db, "no-such-user", "deduct", 1, "x");
    expect(!result.success && result.error.code).toBe("USER_NOT_FOUND");
    const credit = await atomicTokenOperation(db, "no-such-user", "credit", 1, "x");
    expect(!credit.success && credit.error.code).toBe("USER_NOT_FOUND");
  });

  it("refuses a credit past 2^53−1 with BALANCE_OVERFLOW", async () => {
    const user = await newUser(db, { balance: 10 });
    const result = await atomicTokenOperation(db, user, "credit", Number.MAX_SAFE_INTEGER - 5, "x");
    expect(!result.success && result.error.code).toBe("BALANCE_OVERFLOW");
    const fits = await atomicTokenOperation(db, user, "credit", Number.MAX_SAFE_INTEGER - 10, "x");
    expect(fits).toMatchObject({ success: true, data: { balance: Number.MAX_SAFE_INTEGER } });
  });

  it("a repeated idempotency key returns the first result; the same key for anything else is refused", async () => {
    const user = await newUser(db, { balance: 10 });
    const first = await atomicTokenOperation(db, user, "deduct", 2, "x", { idempotencyKey: `k-${dialect}-1` });
    const again = await atomicTokenOperation(db, user, "deduct", 2, "x", { idempotencyKey: `k-${dialect}-1` });
    expect(first.success && again.success).toBe(true);
    if (!first.success || !again.success) return;
    expect(again.data).toEqual({ ...first.data, replayed: true });
    expect(await getBalance(db, user)).toBe(8);
    const other = await atomicTokenOperation(db, user, "deduct", 3, "x", { idempotencyKey: `k-${dialect}-1` });
    expect(!other.success && other.error.code).toBe("IDEMPOTENCY_CONFLICT");
    const otherOp = await atomicTokenOperation(db, user, "credit", 2, "x", { idempotencyKey: `k-${dialect}-1` });
    expect(!otherOp.success && otherOp.error.code).toBe("IDEMPOTENCY_CONFLICT");
    expect(await getBalance(db, user)).toBe(8);
  });

  it("refuses invalid amounts in the library", async () => {
    const user = await newUser(db, { balance: 10 });
    for (const amount of [0, -5, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      const result = await atomicTokenOperation(db, user, "deduct", amount, "x");
      expect(!result.success && result.error.code).toBe("INVALID_AMOUNT");
    }
    expect(await getBalance(db, user)).toBe(10);
  });

  it("a CHECK violation surfaces as a code, not a crash", async () => {
    const user = await newUser(db, { balance: 1 });
    const result = await atomicTokenOperation(db, user, "deduct", 1, "x", { briefId: "no-such-brief" });
    expect(!result.success && result.error.code).toBe("BRIEF_NOT_FOUND");
    await expect(db.run(sql`UPDATE users SET token_balance = -1 WHERE id = ${user}`)).rejects.toThrow();
    expect(await getBalance(db, user)).toBe(1);
  });

  it("tokens verify finds drift and exits 1 with INVARIANT_VIOLATED", async () => {
    const user = await newUser(db, { balance: 5 });
    await db.run(sql`UPDATE users SET token_balance = 6 WHERE id = ${user}`); // a write that bypassed the ledger
    const result = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ ok: false, error: { code: "INVARIANT_VIOLATED" } });
    expect(result.json?.drifting).toEqual([{ userId: user, balance: 6, ledgerSum: 5, difference: 1 }]);
    await db.run(sql`UPDATE users SET token_balance = 5 WHERE id = ${user}`);
    const fixed = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(fixed.code).toBe(0);
    expect(fixed.json).toMatchObject({ ok: true, drifting: [] });
    const [users] = await db.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM users`);
    expect(fixed.json?.checked).toBe(Number(users?.n)); // every user, not only the drifting one
  });

  it("CLI: deduct, balance and history print the contract's fields", async () => {
    const user = await newUser(db, { balance: 10 });
    const deduct = await cli(["tokens", "deduct", user, "4", "--reason", "cli", "--key", `cli-${dialect}`, "--db", url, "--json"]);
    expect(deduct.code).toBe(0);
    expect(deduct.json).toMatchObject({ ok: true, userId: user, operation: "deduct", amount: 4, balance: 6, replayed: false });
    expect(typeof deduct.json?.transactionId).toBe("string");
    const replay = await cli(["tokens", "deduct", user, "4", "--key", `cli-${dialect}`, "--db", url, "--json"]);
    expect(replay.json).toMatchObject({ ok: true, balance: 6, replayed: true, transactionId: deduct.json?.transactionId });
    const conflict = await cli(["tokens", "deduct", user, "5", "--key", `cli-${dialect}`, "--db", url, "--json"]);
    expect(conflict.code).toBe(3);
    expect(conflict.json?.error.code).toBe("IDEMPOTENCY_CONFLICT");
    const balance = await cli(["tokens", "balance", user, "--db", url, "--json"]);
    expect(balance.json).toEqual({ ok: true, userId: user, balance: 6, held: 0, available: 6 });
    const history = await cli(["tokens", "history", user, "--limit", "1", "--db", url, "--json"]);
    expect(history.json?.entries).toHaveLength(1);
    expect(history.json?.entries[0]).toMatchObject({ amount: -4, balanceAfter: 6, reason: "cli" });
  });

  it.each([["-5"], ["0"], ["1.5"], ["1e3"], ["abc"], [""], ["9007199254740992"], ["99999999999999999999"], [" 7x"], [" 5"], ["5 "], ["+5"], ["0x10"]])(
    "CLI: amount %j is exit 2 INVALID_AMOUNT, one line, nothing changed",
    async (amount) => {
      const user = await newUser(db, { balance: 10 });
      const result = await cli(["tokens", "deduct", user, amount, "--db", url, "--json"]);
      expect(result.code).toBe(2);
      expect(result.json?.error.code).toBe("INVALID_AMOUNT");
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(await getBalance(db, user)).toBe(10);
      expect(await getHistory(db, user)).toHaveLength(1);
    },
  );

  it("CLI: --no-prepare (PgBouncer in transaction mode) gives the same results", async () => {
    const user = await newUser(db, { balance: 10 });
    const result = await cli(["--no-prepare", "tokens", "deduct", user, "3", "--db", url, "--json"]);
    expect(result.json).toMatchObject({ ok: true, balance: 7 });
    const race = await cli(["--no-prepare", "race-test", "--n", "40", "--db", url, "--json"]);
    expect(race.json).toMatchObject({ ok: true, successes: 20 });
  });

  it.each([[""], ["k".repeat(201)]])("CLI: an idempotency key of %#th kind (empty, over 200 characters) is exit 2 USAGE, nothing changed", async (key) => {
    const user = await newUser(db, { balance: 10 });
    const result = await cli(["tokens", "deduct", user, "1", "--key", key, "--db", url, "--json"]);
    expect(result.code).toBe(2);
    expect(result.json?.error.code).toBe("USAGE");
    expect(await getBalance(db, user)).toBe(10);
  });

  it("CLI: an unknown user is exit 3 USER_NOT_FOUND; too little balance is exit 3 INSUFFICIENT_BALANCE", async () => {
    const unknown = await cli(["tokens", "deduct", "ghost", "1", "--db", url, "--json"]);
    expect(unknown.code).toBe(3);
    expect(unknown.json?.error.code).toBe("USER_NOT_FOUND");
    const user = await newUser(db, { balance: 2 });
    const poor = await cli(["tokens", "deduct", user, "3", "--db", url]);
    expect(poor.code).toBe(3);
    expect(poor.stderr).toMatch(/^error: user .* has 2 tokens, cannot deduct 3; nothing changed\n$/);
  });

  it("CLI: many processes deducting from one small balance: exactly the affordable number succeed", async () => {
    const user = await newUser(db, { balance: 5 });
    const results = await Promise.all(Array.from({ length: 12 }, () => cli(["tokens", "deduct", user, "1", "--db", url, "--json"])));
    const codes = results.map((r) => r.code).sort();
    expect(codes).toEqual([0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 3]);
    for (const r of results.filter((r) => r.code === 3)) expect(r.json?.error.code).toBe("INSUFFICIENT_BALANCE");
    for (const r of results) expect(r.stderr).not.toMatch(/SQLITE_BUSY|\n\s+at /);
    expect(await getBalance(db, user)).toBe(0);
    expect((await verifyLedger(db)).drifting).toEqual([]);
  });

  it("CLI: ten processes sending one key at the same moment apply it once", async () => {
    const user = await newUser(db, { balance: 100 });
    const key = `burst-${dialect}`;
    const results = await Promise.all(
      Array.from({ length: 10 }, () => cli(["tokens", "deduct", user, "7", "--key", key, "--db", url, "--json"])),
    );
    expect(results.map((r) => r.code)).toEqual(Array(10).fill(0));
    expect(results.filter((r) => r.json?.replayed === false)).toHaveLength(1);
    expect(new Set(results.map((r) => r.json?.transactionId)).size).toBe(1);
    expect(await getBalance(db, user)).toBe(93);
  });

  it("a process killed with SIGKILL mid-stream of deductions leaves the ledger consistent", async () => {
    const user = await newUser(db, { balance: 1_000_000 });
    const raced = async () => {
      const [row] = await db.all<{ n: number | string }>(
        sql`SELECT count(*) AS n FROM token_transactions WHERE user_id LIKE 'race-%' AND type = 'deduct'`,
      );
      return Number(row?.n ?? 0);
    };
    const child = spawnCli(["race-test", "--n", "100000", "--concurrency", "4", "--keep", "--db", url]);
    // kill it once the racers are writing, however slow the machine is today
    for (let waited = 0; (await raced()) < 50 && waited < 30_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("close", resolve));
    const landed = await raced();
    expect(landed).toBeGreaterThanOrEqual(50);
    expect(landed).toBeLessThan(100_000);
    const burst = Array.from({ length: 4 }, () => spawnCli(["tokens", "deduct", user, "1", "--db", url]));
    await new Promise((resolve) => setTimeout(resolve, 150));
    for (const c of burst) c.kill("SIGKILL");
    await Promise.all(burst.map((c) => new Promise((resolve) => c.on("close", resolve))));
    const verify = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(verify.json).toMatchObject({ ok: true, drifting: [] });
    expect(verify.code).toBe(0);
  });
});
