/**
 * Natural batching (issue 12): thousands of token operations called at once on one database, with
 * batching on and off, each judged on its own. Every individual result is checked against a
 * sequential model of the same calls in the order they were made, and the ledger invariant after.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyHold,
  atomicTokenOperation,
  getBalance,
  openDatabase,
  verifyLedger,
  type BriefDatabase,
  type TokenOperation,
} from "../src/index.js";
import { Random } from "../src/core/prng.js";
import { DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";

const MAX = Number.MAX_SAFE_INTEGER;

interface Call {
  readonly userId: string;
  readonly operation: TokenOperation;
  readonly amount: number;
  readonly key?: string;
  readonly briefId?: string;
}

/** What a call answers: its balance after and whether it replayed, or its error code. */
type Answer = { readonly balance: number; readonly replayed: boolean } | { readonly code: string };

/** The calls applied one after another, in order: what each answers, and the balances after. */
function sequentialModel(opening: ReadonlyMap<string, number>, calls: readonly Call[]) {
  const balances = new Map(opening);
  const keys = new Map<string, { userId: string; operation: TokenOperation; amount: number; balance: number }>();
  const answers: Answer[] = calls.map((call) => {
    if (call.key !== undefined) {
      const prior = keys.get(call.key);
      if (prior !== undefined) {
        const same = prior.userId === call.userId && prior.operation === call.operation && prior.amount === call.amount;
        return same ? { balance: prior.balance, replayed: true } : { code: "IDEMPOTENCY_CONFLICT" };
      }
    }
    const balance = balances.get(call.userId);
    if (balance === undefined) return { code: "USER_NOT_FOUND" };
    if (call.operation === "deduct" && balance < call.amount) return { code: "INSUFFICIENT_BALANCE" };
    if (call.operation === "credit" && balance > MAX - call.amount) return { code: "BALANCE_OVERFLOW" };
    if (call.briefId !== undefined) return { code: "BRIEF_NOT_FOUND" };
    const after = call.operation === "deduct" ? balance - call.amount : balance + call.amount;
    balances.set(call.userId, after);
    if (call.key !== undefined) keys.set(call.key, { ...call, balance: after });
    return { balance: after, replayed: false };
  });
  return { answers, balances };
}


describe.each(DIALECTS)("%s: batched token operations", (dialect) => {
  let url: string;
  let setup: BriefDatabase;
  let round = 0;

  beforeAll(async () => {
    ({ url, db: setup } = await initTest(dialect, { batch: false }));
  });
  afterAll(() => destroyTest(setup));

  /** Users with opening balances (one near the overflow bound), and `n` mixed calls on them. */
  async function scenario(n: number, seed: number) {
    const prefix = `r${++round}`;
    const opening = new Map<string, number>();
    for (let i = 0; i < 12; i++) opening.set(`${prefix}-u${i}`, i * 7);
    opening.set(`${prefix}-rich`, MAX - 6);
    for (const [id, balance] of opening) {
      await newUser(setup, { id, balance: balance });
    }
    const ids = [...opening.keys(), `${prefix}-ghost`];
    const generator = new Random(seed); // seeded, so that a failure can be replayed
    const next = () => generator.next();
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
    const fresh = (): Call => ({
      userId: pick(ids),
      operation: next() < 0.4 ? "credit" : "deduct",
      amount: 1 + Math.floor(next() * 12),
    });
    // a small pool of keyed calls: repeats land in the same batch, one in five with another amount (a conflict)
    const keyed = Array.from({ length: 40 }, (_, i) => ({ ...fresh(), key: `${prefix}-k${i}` }));
    const calls: Call[] = Array.from({ length: n }, () => {
      const roll = next();
      if (roll < 0.3) {
        const call = pick(keyed);
        return next() < 0.2 ? { ...call, amount: call.amount + 1 } : call;
      }
      if (roll > 0.98) return { ...fresh(), briefId: `${prefix}-no-such-brief` };
      return fresh();
    });
    return { opening, calls, ...sequentialModel(opening, calls) };
  }

  async function runConcurrently(db: BriefDatabase, calls: readonly Call[]): Promise<Answer[]> {
    // all called in one turn, in order: the order the model applies them in
    const results = await Promise.all(
      calls.map((call, i) =>
        atomicTokenOperation(db, call.userId, call.operation, call.amount, `call ${i}`, {
          ...(call.key === undefined ? {} : { idempotencyKey: call.key }),
          ...(call.briefId === undefined ? {} : { briefId: call.briefId }),
        }),
      ),
    );
    return results.map((result) =>
      result.success ? { balance: result.data.balance, replayed: result.data.replayed } : { code: result.error.code },
    );
  }

  async function runInTurn(db: BriefDatabase, calls: readonly Call[]): Promise<Answer[]> {
    const answers: Answer[] = [];
    for (const call of calls) answers.push(...(await runConcurrently(db, [call])));
    return answers;
  }

  async function expectModel(db: BriefDatabase, opening: Map<string, number>, balances: Map<string, number>) {
    for (const [id, balance] of balances) expect(await getBalance(db, id)).toBe(balance);
    const report = await verifyLedger(db);
    expect(report.drifting).toEqual([]);
    expect(report.ok).toBe(true);
    const [negative] = await db.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM users WHERE token_balance < 0`);
    expect(Number(negative?.n)).toBe(0);
    expect(opening.size).toBeGreaterThan(0);
  }

  // unbatched, concurrent calls are applied in whatever order their connections answer (and a
  // keyed call looks its key up first): the model is checked there on calls made one at a time
  it.each([
    { batch: true, n: 3000, together: true },
    { batch: false, n: 600, together: false },
  ])("$n calls (batch: $batch, at once: $together) answer as the sequential model", async ({ batch, n, together }) => {
    const db = await openDatabase(url, { batch });
    try {
      const { opening, calls, answers, balances } = await scenario(n, 12 + round);
      // the big mix exercises every kind of answer
      const kinds = new Set(answers.map((a) => ("code" in a ? a.code : a.replayed ? "replayed" : "applied")));
      if (together) expect([...kinds].sort()).toEqual(
        ["BALANCE_OVERFLOW", "BRIEF_NOT_FOUND", "IDEMPOTENCY_CONFLICT", "INSUFFICIENT_BALANCE", "USER_NOT_FOUND", "applied", "replayed"].sort(),
      );
      expect(together ? await runConcurrently(db, calls) : await runInTurn(db, calls)).toEqual(answers);
      await expectModel(db, opening, balances);
      const applied = answers.filter((a) => "replayed" in a && !a.replayed).length;
      const ids = [...opening.keys()];
      const [rows] = await db.all<{ n: number | string }>(
        sql`SELECT count(*) AS n FROM token_transactions WHERE user_id IN (${sql.join(ids.map((id) => sql`${id}`), sql`, `)})`,
      );
      expect(Number(rows?.n)).toBe(applied + [...opening.values()].filter((balance) => balance > 0).length);
    } finally {
      await db.close();
    }
  });

  it("a change that fails on its own (a brief that does not exist) fails none of its batch", async () => {
    const db = await openDatabase(url);
    try {
      const user = `lone-${dialect}`;
      await newUser(db, { id: user, balance: 100 });
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          atomicTokenOperation(db, user, "deduct", 1, `d${i}`, i % 10 === 5 ? { briefId: "no-such-brief" } : {}),
        ),
      );
      expect(results.map((r) => (r.success ? r.data.balance : r.error.code))).toEqual(
        Array.from({ length: 40 }, (_, i) => (i % 10 === 5 ? "BRIEF_NOT_FOUND" : 100 - (i + 1 - Math.floor((i + 5) / 10)))),
      );
      expect(await getBalance(db, user)).toBe(64);
      expect((await verifyLedger(db)).ok).toBe(true);
    } finally {
      await db.close();
    }
  });

  it("batched deducts never take held tokens", async () => {
    const db = await openDatabase(url);
    try {
      const user = `held-${dialect}`;
      await newUser(db, { id: user, balance: 20 });
      await applyHold(db, user, 15, "in flight");
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => atomicTokenOperation(db, user, "deduct", 1, `d${i}`)));
      expect(results.map((r) => (r.success ? r.data.balance : r.error.code))).toEqual([
        19, 18, 17, 16, 15, ...Array(5).fill("INSUFFICIENT_BALANCE"),
      ]);
      expect(await getBalance(db, user)).toBe(15);
      expect((await verifyLedger(db)).ok).toBe(true);
    } finally {
      await db.close();
    }
  });

  /**
   * Two users with 10 tokens each, one of them with its row locked by another connection until
   * `release()`; `db` has a pool of 2 (one slot, so calls made in one turn go as one batch) and a
   * 300 ms lock timeout.
   */
  const lockedUserBesideFreeOne = async (prefix: string) => {
    const db = await openDatabase(url, { poolSize: 2, lockTimeoutMs: 300 });
    const locker = await openDatabase(url, { batch: false });
    const [locked, free] = [`${prefix}locked-${dialect}`, `${prefix}free-${dialect}`];
    for (const id of [locked, free]) await newUser(db, { id, balance: 10 });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let lockTaken: () => void = () => {};
    const taken = new Promise<void>((resolve) => (lockTaken = resolve));
    const holder = locker.transaction(
      async (tx) => {
        await tx.run(sql`UPDATE users SET updated_at = updated_at WHERE id = ${locked}`);
        lockTaken();
        await held;
      },
      { isolation: "read committed" },
    );
    await taken;
    return { db, locker, locked, free, release, holder };
  };

  it.runIf(dialect === "postgresql")("a row lock held elsewhere times out its own change, not its batch's", async () => {
    const { db, locker, locked, free, release, holder } = await lockedUserBesideFreeOne("");
    try {
      const results = await Promise.all([
        atomicTokenOperation(db, free, "deduct", 1, "a"),
        atomicTokenOperation(db, locked, "deduct", 1, "b"),
        atomicTokenOperation(db, free, "deduct", 1, "c"),
        atomicTokenOperation(db, free, "deduct", 1, "d"),
      ]);
      release();
      await holder;
      // the batch gave up on the lock; each change was tried again on its own (in the pool's order)
      expect(results.map((r) => (r.success ? "ok" : r.error.code))).toEqual(["ok", "LOCK_TIMEOUT", "ok", "ok"]);
      expect(await getBalance(db, free)).toBe(7);
      expect(await getBalance(db, locked)).toBe(10);
    } finally {
      await db.close();
      await locker.close();
    }
  });

  it("one batch mixing repeated users, replayed keys, refusals, unknown users and missing briefs answers as the sequential model", async () => {
    // pool of 2 on PostgreSQL: one slot, so the calls made in one turn go as one batch; no key
    // repeated inside it, so it is the one statement over arrays there
    const db = await openDatabase(url, { poolSize: 2 });
    try {
      const prefix = `mix${++round}`;
      const opening = new Map<string, number>([
        [`${prefix}-a`, 10],
        [`${prefix}-b`, 0],
        [`${prefix}-c`, 25],
        [`${prefix}-d`, 3],
        [`${prefix}-rich`, MAX - 3],
      ]);
      for (const [id, balance] of opening) {
        await newUser(setup, { id, balance: balance });
      }
      const ids = [...opening.keys(), `${prefix}-ghost`];
      const generator = new Random(7 + round);
      const next = () => generator.next();
      const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
      // keys applied before the batch, one at a time; each used once more inside it (a replay, or a conflict)
      const earlier: Call[] = Array.from({ length: 12 }, (_, i) => ({
        userId: pick(ids.slice(0, 4)),
        operation: i % 3 === 0 ? "deduct" : "credit",
        amount: 1 + (i % 4),
        key: `${prefix}-early-${i}`,
      }));
      let fresh = 0;
      const batch: Call[] = [
        ...earlier.map((call, i) => (i % 4 === 3 ? { ...call, amount: call.amount + 1 } : call)),
        ...Array.from({ length: 300 }, (): Call => {
          const userId = pick(ids);
          // the rich user's calls are mostly credits: they reach the overflow bound
          const credit = next() < (userId.endsWith("-rich") ? 0.9 : 0.45);
          const call: Call = { userId, operation: credit ? "credit" : "deduct", amount: 1 + Math.floor(next() * 9) };
          const roll = next();
          if (roll < 0.2) return { ...call, key: `${prefix}-new-${fresh++}` };
          if (roll > 0.95) return { ...call, briefId: `${prefix}-no-such-brief` };
          return call;
        }),
      ];
      // shuffled, so that replays, refusals and missing briefs fall between a user's other calls
      for (let i = batch.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [batch[i], batch[j]] = [batch[j] as Call, batch[i] as Call];
      }
      const { answers, balances } = sequentialModel(opening, [...earlier, ...batch]);
      expect(await runInTurn(db, earlier)).toEqual(answers.slice(0, earlier.length));
      const expected = answers.slice(earlier.length);
      const kinds = new Set(expected.map((a) => ("code" in a ? a.code : a.replayed ? "replayed" : "applied")));
      expect([...kinds].sort()).toEqual(
        ["BALANCE_OVERFLOW", "BRIEF_NOT_FOUND", "IDEMPOTENCY_CONFLICT", "INSUFFICIENT_BALANCE", "USER_NOT_FOUND", "applied", "replayed"].sort(),
      );
      expect(await runConcurrently(db, batch)).toEqual(expected);
      await expectModel(db, opening, balances);
    } finally {
      await db.close();
    }
  });

  it.runIf(dialect === "postgresql")("a batch given up on a lock keeps each user's calls in order", async () => {
    const { db, locker, locked, free, release, holder } = await lockedUserBesideFreeOne("ordered-");
    try {
      // a keyed call first: tried again on its own it would look its key up first and come last
      const results = await Promise.all([
        atomicTokenOperation(db, free, "deduct", 8, "a", { idempotencyKey: `ordered-${dialect}` }),
        atomicTokenOperation(db, locked, "deduct", 1, "b"),
        atomicTokenOperation(db, free, "credit", 5, "c"),
        atomicTokenOperation(db, free, "deduct", 6, "d"),
      ]);
      release();
      await holder;
      expect(results.map((r) => (r.success ? r.data.balance : r.error.code))).toEqual([2, "LOCK_TIMEOUT", 7, 1]);
      expect(await getBalance(db, free)).toBe(1);
      expect(await getBalance(db, locked)).toBe(10);
      expect((await verifyLedger(db)).ok).toBe(true);
    } finally {
      await db.close();
      await locker.close();
    }
  });

  it("the same key twice in one batch: the second replays the first, a different amount conflicts", async () => {
    const db = await openDatabase(url);
    try {
      const user = `keyed-${dialect}`;
      await newUser(db, { id: user, balance: 10 });
      const [first, again, other] = await Promise.all([
        atomicTokenOperation(db, user, "deduct", 3, "a", { idempotencyKey: `k-${dialect}` }),
        atomicTokenOperation(db, user, "deduct", 3, "a", { idempotencyKey: `k-${dialect}` }),
        atomicTokenOperation(db, user, "deduct", 4, "a", { idempotencyKey: `k-${dialect}` }),
      ]);
      expect(first).toMatchObject({ success: true, data: { balance: 7, replayed: false } });
      expect(again).toMatchObject({ success: true, data: { balance: 7, replayed: true } });
      expect(first.success && again.success && again.data.transactionId).toBe(first.success && first.data.transactionId);
      expect(!other.success && other.error.code).toBe("IDEMPOTENCY_CONFLICT");
      expect(await getBalance(db, user)).toBe(7);
    } finally {
      await db.close();
    }
  });
});
