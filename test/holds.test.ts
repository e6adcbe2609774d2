import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  atomicTokenOperation,
  captureHold,
  getAvailableBalance,
  getBalance,
  getHistory,
  holdTokens,
  listHolds,
  openDatabase,
  releaseHold,
  verifyLedger,
  withTransaction,
  type BriefDatabase,
} from "../src/index.js";
import { cli, DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";
import { codeOf, untilExpired as untilExpiredOn } from "./support/holds.js";

const WELL_FORMED_UNKNOWN = "hold_01a21367-ad82-709f-b965-c2bf16d38469";

describe.each(DIALECTS)("%s: token holds", (dialect) => {
  let url: string;
  let db: BriefDatabase;
  const hold = async (userId: string, amount: number, ttlSeconds?: number) => {
    const result = await holdTokens(db, userId, amount, "brief generation", ttlSeconds === undefined ? {} : { ttlSeconds });
    if (!result.success) throw result.error;
    return result.data;
  };
  const untilExpired = (userId: string) => untilExpiredOn(db, userId);
  const ledgerRowsOf = async (holdId: string) =>
    db.all<{ amount: number | string }>(sql`SELECT amount FROM token_transactions WHERE hold_id = ${holdId}`);

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  it("a hold takes from the available balance; capture charges the actual cost as one ledger row naming the hold and releases the rest", async () => {
    const user = await newUser(db, { balance: 100 });
    const placed = await hold(user, 60);
    expect(placed).toMatchObject({ userId: user, amount: 60, status: "active", balance: 100, held: 60, available: 40, replayed: false });
    expect(placed.holdId).toMatch(/^hold_[0-9a-f-]{36}$/);
    expect(placed.expiresAt.getTime() - placed.createdAt.getTime()).toBe(15 * 60 * 1000);
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 100, held: 60, available: 40 });

    // a deduct takes only from the available balance
    expect(codeOf(await atomicTokenOperation(db, user, "deduct", 41, "x"))).toBe("INSUFFICIENT_BALANCE");
    expect(codeOf(await holdTokens(db, user, 41, "x"))).toBe("INSUFFICIENT_BALANCE");
    expect(codeOf(await atomicTokenOperation(db, user, "deduct", 40, "x"))).toBe("ok");

    const captured = await captureHold(db, placed.holdId, 45);
    expect(captured).toMatchObject({
      success: true,
      data: { holdId: placed.holdId, status: "captured", amount: 60, captured: 45, released: 15, balance: 15, replayed: false },
    });
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 15, held: 0, available: 15 });
    const [newest] = await getHistory(db, user, { limit: 1 });
    expect(newest).toMatchObject({ type: "deduct", amount: -45, balanceAfter: 15, holdId: placed.holdId, reason: "brief generation" });
    expect(captured.success && captured.data.transactionId).toBe(newest?.id);
    expect(await verifyLedger(db)).toMatchObject({ ok: true, drifting: [], holdViolations: [] });
  });

  it("settles exactly once: a repeat replays the first result, a different settlement is HOLD_SETTLED", async () => {
    const user = await newUser(db, { balance: 100 });
    const a = await hold(user, 30);
    const first = await captureHold(db, a.holdId, 20);
    const again = await captureHold(db, a.holdId, 20);
    expect(first.success && again.success).toBe(true);
    if (!first.success || !again.success) return;
    expect(again.data).toEqual({ ...first.data, replayed: true });
    expect(codeOf(await captureHold(db, a.holdId, 21))).toBe("HOLD_SETTLED");
    expect(codeOf(await captureHold(db, a.holdId))).toBe("HOLD_SETTLED"); // "all of it" is 30, not the 20 charged
    expect(codeOf(await releaseHold(db, a.holdId))).toBe("HOLD_SETTLED");

    const b = await hold(user, 30);
    const released = await releaseHold(db, b.holdId);
    expect(released).toMatchObject({ success: true, data: { status: "released", captured: 0, released: 30, transactionId: null, replayed: false } });
    expect(await releaseHold(db, b.holdId)).toMatchObject({ success: true, data: { status: "released", replayed: true } });
    expect(codeOf(await captureHold(db, b.holdId, 1))).toBe("HOLD_SETTLED");
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 80, held: 0, available: 80 });
    expect(await ledgerRowsOf(a.holdId)).toHaveLength(1);
    expect(await ledgerRowsOf(b.holdId)).toHaveLength(0);
  });

  it("refusals change nothing and say why", async () => {
    const user = await newUser(db, { balance: 50 });
    const a = await hold(user, 10);
    expect(codeOf(await holdTokens(db, "no-such-user", 1, "x"))).toBe("USER_NOT_FOUND");
    expect(codeOf(await holdTokens(db, user, 41, "x"))).toBe("INSUFFICIENT_BALANCE");
    expect(codeOf(await holdTokens(db, user, 1, "x", { briefId: "no-such-brief" }))).toBe("BRIEF_NOT_FOUND");
    for (const ttlSeconds of [0, -1, 1.5, 86_401]) expect(codeOf(await holdTokens(db, user, 1, "x", { ttlSeconds }))).toBe("USAGE");
    for (const amount of [0, -1, 1.5]) expect(codeOf(await holdTokens(db, user, amount, "x"))).toBe("INVALID_AMOUNT");
    expect(codeOf(await captureHold(db, a.holdId, 11))).toBe("CAPTURE_EXCEEDS_HOLD");
    expect(codeOf(await captureHold(db, a.holdId, 0))).toBe("INVALID_AMOUNT");
    expect(codeOf(await captureHold(db, WELL_FORMED_UNKNOWN))).toBe("HOLD_NOT_FOUND");
    expect(codeOf(await releaseHold(db, WELL_FORMED_UNKNOWN))).toBe("HOLD_NOT_FOUND");
    for (const id of ["", "hold_", "01a21367-ad82-709f-b965-c2bf16d38469", `${WELL_FORMED_UNKNOWN}x`, WELL_FORMED_UNKNOWN.toUpperCase()]) {
      expect(codeOf(await captureHold(db, id))).toBe("INVALID_HOLD_ID");
    }
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 50, held: 10, available: 40 });
    expect(await getHistory(db, user)).toHaveLength(1);
    // a UUID's hex digits are case-insensitive: the same hold, copied in capitals
    const shouted = `hold_${a.holdId.slice("hold_".length).toUpperCase()}`;
    expect(await releaseHold(db, shouted)).toMatchObject({ success: true, data: { holdId: a.holdId, status: "released" } });
  });

  it("an idempotency key places a hold once; the same key for another hold is IDEMPOTENCY_CONFLICT", async () => {
    const user = await newUser(db, { balance: 50 });
    const key = `hold-key-${dialect}`;
    const first = await holdTokens(db, user, 10, "x", { idempotencyKey: key });
    const again = await holdTokens(db, user, 10, "x", { idempotencyKey: key });
    expect(first.success && again.success && again.data.holdId === first.data.holdId && again.data.replayed).toBe(true);
    expect(codeOf(await holdTokens(db, user, 11, "x", { idempotencyKey: key }))).toBe("IDEMPOTENCY_CONFLICT");
    expect((await getAvailableBalance(db, user)).held).toBe(10);
  });

  it("an expired hold stops counting by the database's clock with nothing written; capturing it is HOLD_EXPIRED", async () => {
    const user = await newUser(db, { balance: 100 });
    const a = await hold(user, 100, 1);
    await untilExpired(user);
    const [row] = await db.all<{ status: string }>(sql`SELECT status FROM token_holds WHERE id = ${a.holdId}`);
    expect(row?.status).toBe("active"); // nothing swept it: it stopped counting on its own
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 100, held: 0, available: 100 });
    expect((await listHolds(db, user)).success && (await listHolds(db, user))).toMatchObject({ data: [] });
    expect(codeOf(await captureHold(db, a.holdId, 1))).toBe("HOLD_EXPIRED");
    // the deduct finds the room the expiry freed
    expect(await atomicTokenOperation(db, user, "deduct", 100, "x")).toMatchObject({ success: true, data: { balance: 0 } });
    expect(await releaseHold(db, a.holdId)).toMatchObject({ success: true, data: { status: "expired", released: 100, replayed: true } });
    expect(codeOf(await captureHold(db, a.holdId, 1))).toBe("HOLD_EXPIRED");
    expect(await verifyLedger(db)).toMatchObject({ ok: true });
  });

  it("batched deducts at once after a hold expired all find the room it freed, whichever of them sweeps it", async () => {
    // 20 deducts of 5 on 750 with 700 held: 10 fit beside the hold, all 20 once it has expired.
    // Each batch that counts the unswept hold refuses; one refusal sweeps it, and a refusal
    // judged after that sweep must not stand on a hold that had expired when its guard decided.
    const user = await newUser(db, { balance: 750 });
    const a = await hold(user, 700, 1);
    await untilExpired(user);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => atomicTokenOperation(db, user, "deduct", 5, `after expiry ${i}`)));
    expect(results.filter((r) => !r.success).map((r) => (r.success ? "" : r.error.message))).toEqual([]);
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 650, held: 0, available: 650 });
    expect(await releaseHold(db, a.holdId)).toMatchObject({ success: true, data: { status: "expired", replayed: true } });
    expect(await verifyLedger(db)).toMatchObject({ ok: true });
  });

  it.runIf(dialect === "postgresql")("a release that deadlocks with a deduct sweeping in the app's transaction is run again, not failed", async () => {
    // the app's transaction holds the user row (its first deduct) and then sweeps the expired
    // hold; a release of that hold, begun meanwhile, holds the hold row and waits for the user row
    const user = await newUser(db, { balance: 100 });
    const a = await hold(user, 90, 1);
    await untilExpired(user);
    const other = await openDatabase(url, { batch: false });
    try {
      let release: ReturnType<typeof releaseHold> | undefined;
      let settled = false;
      // either side may be the deadlock's victim: the release (run again by releaseHold) or the
      // app's transaction (run again by withTransaction, the release then settled already)
      const inside = await withTransaction(db, async (tx) => {
        const first = await atomicTokenOperation(db, user, "deduct", 1, "first", { transaction: tx });
        if (!first.success) throw first.error;
        if (release === undefined) {
          release = releaseHold(other, a.holdId);
          void release.finally(() => (settled = true));
        }
        while (
          !settled &&
          (await db.all(sql`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE token_holds SET status = CASE%'`)).length === 0
        ) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const second = await atomicTokenOperation(db, user, "deduct", 50, "second", { transaction: tx });
        if (!second.success) throw second.error;
        return second.data;
      });
      expect(inside).toMatchObject({ success: true, data: { balance: 49 } });
      expect(await release).toMatchObject({ success: true, data: { status: "expired" } });
      expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 49, held: 0, available: 49 });
      expect(await verifyLedger(db)).toMatchObject({ ok: true });
    } finally {
      await other.close();
    }
  });

  it("a deduct inside the caller's transaction uses the room an expired hold freed (swept inside that transaction)", async () => {
    const user = await newUser(db, { balance: 100 });
    const a = await hold(user, 80, 1);
    await untilExpired(user);
    const inside = await withTransaction(db, async (tx) => {
      const result = await atomicTokenOperation(db, user, "deduct", 50, "in the app's transaction", { transaction: tx });
      if (!result.success) throw result.error;
      return result.data;
    });
    expect(inside).toMatchObject({ success: true, data: { balance: 50 } });
    const [row] = await db.all<{ status: string }>(sql`SELECT status FROM token_holds WHERE id = ${a.holdId}`);
    expect(row?.status).toBe("expired");
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 50, held: 0, available: 50 });
    // a rolled-back transaction takes its sweep with it, and the refusal inside one tells the truth
    const b = await hold(user, 40, 1);
    await untilExpired(user);
    const refused = await withTransaction(db, async (tx) => {
      const result = await atomicTokenOperation(db, user, "deduct", 60, "too much", { transaction: tx });
      if (!result.success) throw result.error;
      return result.data;
    });
    expect(refused).toMatchObject({ success: false, error: { code: "INSUFFICIENT_BALANCE" } });
    expect(refused.success ? "" : refused.error.message).toMatch(/has 50 tokens,/);
    const [still] = await db.all<{ status: string }>(sql`SELECT status FROM token_holds WHERE id = ${b.holdId}`);
    expect(still?.status).toBe("active");
    expect(await verifyLedger(db)).toMatchObject({ ok: true });
  });

  it("a hold's key repeated after the hold expired replays it as expired, not active (its reservation is gone)", async () => {
    const user = await newUser(db, { balance: 100 });
    const options = { ttlSeconds: 1, idempotencyKey: `late-${dialect}` };
    const first = await holdTokens(db, user, 30, "brief generation", options);
    expect(first).toMatchObject({ success: true, data: { status: "active", replayed: false } });
    await untilExpired(user);
    const again = await holdTokens(db, user, 30, "brief generation", options);
    expect(again).toMatchObject({ success: true, data: { status: "expired", replayed: true, held: 0, available: 100 } });
    expect(codeOf(await captureHold(db, first.success ? first.data.holdId : "", 30))).toBe("HOLD_EXPIRED");
  });

  it("a hold expiring while its capture is in flight is charged at most once, and the balance never goes below zero", async () => {
    const user = await newUser(db, { balance: 100 });
    const a = await hold(user, 100, 3);
    // another connection holds the hold's row (PostgreSQL) or the write lock (SQLite) until the expiry passes
    const blocker = await openDatabase(url);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const blocking = blocker.transaction(async (tx) => {
      await tx.run(sql`UPDATE token_holds SET reason = reason WHERE id = ${a.holdId}`);
      await released;
    });
    const capture = cli(["tokens", "capture", a.holdId, "70", "--db", url, "--json"]);
    await untilExpired(user);
    // a deduct that fits only once the hold no longer counts, racing the capture for the same tokens
    const deduct = cli(["tokens", "deduct", user, "100", "--db", url, "--json"]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    release();
    await blocking;
    await blocker.close();
    const [c, d] = await Promise.all([capture, deduct]);
    expect([c.code, d.code].sort()).toEqual([0, 3]); // exactly one took the tokens
    if (c.code === 0) {
      expect(c.json).toMatchObject({ status: "captured", captured: 70, balance: 30 });
      expect(d.json?.error.code).toBe("INSUFFICIENT_BALANCE");
      expect(await getBalance(db, user)).toBe(30);
    } else {
      expect(c.json?.error.code).toBe("HOLD_EXPIRED");
      expect(d.json).toMatchObject({ balance: 0 });
      expect(await getBalance(db, user)).toBe(0);
    }
    expect((await ledgerRowsOf(a.holdId)).length).toBe(c.code === 0 ? 1 : 0);
    expect(await verifyLedger(db)).toMatchObject({ ok: true, holdViolations: [] });
  });

  it("ten processes capturing one hold at once: exactly one charge, the others read it back", async () => {
    const user = await newUser(db, { balance: 100 });
    const a = await hold(user, 50);
    const results = await Promise.all(Array.from({ length: 10 }, () => cli(["tokens", "capture", a.holdId, "30", "--db", url, "--json"])));
    expect(results.map((r) => r.code)).toEqual(Array(10).fill(0));
    expect(results.filter((r) => r.json?.replayed === false)).toHaveLength(1);
    expect(new Set(results.map((r) => r.json?.transactionId)).size).toBe(1);
    for (const r of results) expect(r.stderr).toBe("");
    expect((await ledgerRowsOf(a.holdId)).map((r) => Number(r.amount))).toEqual([-30]);
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 70, held: 0, available: 70 });
  });

  it("captures and releases of one hold at once: one kind settles it, the other kind is HOLD_SETTLED", async () => {
    const user = await newUser(db, { balance: 100 });
    const a = await hold(user, 50);
    const commands = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? ["capture", a.holdId, "30"] : ["release", a.holdId]));
    const results = await Promise.all(commands.map((args) => cli(["tokens", ...args, "--db", url, "--json"])));
    const winners = results.filter((r) => r.code === 0);
    expect(winners.filter((r) => r.json?.replayed === false)).toHaveLength(1);
    const status = winners[0]?.json?.status;
    expect(["captured", "released"]).toContain(status);
    for (const r of winners) expect(r.json?.status).toBe(status);
    expect(winners).toHaveLength(5);
    for (const r of results.filter((r) => r.code !== 0)) expect([r.code, r.json?.error.code]).toEqual([3, "HOLD_SETTLED"]);
    expect(await getBalance(db, user)).toBe(status === "captured" ? 70 : 100);
    expect(await verifyLedger(db)).toMatchObject({ ok: true });
  });

  it("CLI: hold, holds, balance, capture and release print their fields", async () => {
    const user = await newUser(db, { balance: 200 });
    const placed = await cli(["tokens", "hold", user, "80", "--ttl", "5m", "--reason", "gen", "--key", `cli-hold-${dialect}`, "--db", url, "--json"]);
    expect(placed.code, placed.stderr).toBe(0);
    expect(placed.json).toMatchObject({ ok: true, userId: user, amount: 80, balance: 200, held: 80, available: 120, replayed: false, reason: "gen" });
    const holdId = placed.json?.holdId as string;
    expect(Date.parse(placed.json?.expiresAt) - Date.parse(placed.json?.createdAt)).toBe(300_000);
    const list = await cli(["tokens", "holds", user, "--db", url, "--json"]);
    expect(list.json).toMatchObject({ ok: true, userId: user, balance: 200, held: 80, available: 120, holds: [{ holdId, amount: 80, reason: "gen" }] });
    const balance = await cli(["tokens", "balance", user, "--db", url, "--json"]);
    expect(balance.json).toEqual({ ok: true, userId: user, balance: 200, held: 80, available: 120 });
    const human = await cli(["tokens", "hold", user, "20", "--db", url]);
    expect(human.stdout).toMatch(/hold\s+hold_[0-9a-f-]{36}\nuser\s+\S+\nheld\s+20\nexpires\s+\S+Z\navailable\s+100 \(balance 200, held 100\)/);
    const capture = await cli(["tokens", "capture", holdId, "--db", url, "--json"]);
    expect(capture.json).toMatchObject({ ok: true, holdId, status: "captured", captured: 80, released: 0, balance: 120, replayed: false });
    const history = await cli(["tokens", "history", user, "--limit", "1", "--db", url, "--json"]);
    expect(history.json?.entries[0]).toMatchObject({ amount: -80, holdId });
    expect(history.json?.entries[0].id).toBe(capture.json?.transactionId);
    const second = (await cli(["tokens", "holds", user, "--db", url, "--json"])).json?.holds[0].holdId;
    const release = await cli(["tokens", "release", second, "--db", url]);
    expect(release.stdout).toMatch(/status\s+released\nreleased\s+20/);
  });

  it("CLI: bad input is one line with its exit code, and changes nothing", async () => {
    const user = await newUser(db, { balance: 10 });
    const a = await hold(user, 5);
    const nowhere = "file:/nonexistent/briefdb/x.db"; // these are refused before any connection
    for (const [args, code, errorCode] of [
      [["tokens", "capture", "hold_123", "--db", nowhere], 2, "INVALID_HOLD_ID"],
      [["tokens", "release", "not-a-hold", "--db", nowhere], 2, "INVALID_HOLD_ID"],
      [["tokens", "hold", user, "5", "--ttl", "0s", "--db", nowhere], 2, "USAGE"],
      [["tokens", "hold", user, "5", "--ttl", "25h", "--db", nowhere], 2, "USAGE"],
      [["tokens", "hold", user, "5", "--ttl", "15 m", "--db", nowhere], 2, "USAGE"],
      [["tokens", "hold", user, "-5", "--db", nowhere], 2, "INVALID_AMOUNT"],
      [["tokens", "capture", a.holdId, "0", "--db", nowhere], 2, "INVALID_AMOUNT"],
      [["tokens", "hold", user, "5", "--key", "", "--db", nowhere], 2, "USAGE"],
      [["tokens", "hold", user, "5", "--key", "k".repeat(201), "--db", nowhere], 2, "USAGE"],
      [["tokens", "deduct", user, "5", "--key", "", "--db", nowhere], 2, "USAGE"],
      [["tokens", "capture", a.holdId, "6", "--db", url], 3, "CAPTURE_EXCEEDS_HOLD"],
      [["tokens", "capture", WELL_FORMED_UNKNOWN, "--db", url], 3, "HOLD_NOT_FOUND"],
      [["tokens", "hold", user, "6", "--db", url], 3, "INSUFFICIENT_BALANCE"],
      [["tokens", "deduct", user, "6", "--db", url], 3, "INSUFFICIENT_BALANCE"],
    ] as const) {
      const result = await cli([...args, "--json"]);
      expect([result.code, result.json?.error.code], args.join(" ")).toEqual([code, errorCode]);
      expect(result.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
    }
    expect(await getAvailableBalance(db, user)).toEqual({ userId: user, balance: 10, held: 5, available: 5 });
  });

  it("tokens verify finds a broken hold invariant: exit 1 INVARIANT_VIOLATED", async () => {
    const user = await newUser(db, { balance: 10 });
    await hold(user, 4);
    await db.run(sql`UPDATE users SET held_tokens = 11 WHERE id = ${user}`); // a write that bypassed the holds
    const result = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json?.error.code).toBe("INVARIANT_VIOLATED");
    expect(result.json?.holdViolations.map((v: { rule: string; userId: string }) => [v.rule, v.userId])).toEqual([
      ["held-matches-holds", user],
      ["held-within-balance", user],
    ]);
    await db.run(sql`UPDATE users SET held_tokens = 4 WHERE id = ${user}`);
    expect((await cli(["tokens", "verify", "--db", url, "--json"])).code).toBe(0);
  });
});
