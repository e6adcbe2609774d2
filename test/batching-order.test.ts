/**
 * Review 12 (hostile): batching must not reorder one user's operations, lie about an outcome when
 * the connection dies mid-batch, or pull an operation of `withTransaction` into a batch.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyHold,
  atomicTokenOperation,
  getBalance,
  openDatabase,
  verifyLedger,
  withTransaction,
  type BriefDatabase,
} from "../src/index.js";
import { DIALECTS, pgAdminUrl } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";

describe.each(DIALECTS)("%s: batching keeps each user's order and its failures apart", (dialect) => {
  let url: string;
  let setup: BriefDatabase;

  beforeAll(async () => {
    ({ url, db: setup } = await initTest(dialect, { batch: false }));
  });
  afterAll(() => destroyTest(setup));

  it("a deduct refused while tokens are held is refused in call order, not applied after a later credit", async () => {
    const db = await openDatabase(url);
    try {
      const id = await newUser(setup, { balance: 10 });
      await applyHold(setup, id, 5, "in flight", { ttlSeconds: 3600 });
      // in call order: deduct 8 (available 5: refused), then credit 10
      const [deduct, credit] = await Promise.all([
        atomicTokenOperation(db, id, "deduct", 8, "first"),
        atomicTokenOperation(db, id, "credit", 10, "second"),
      ]);
      expect(credit.success && credit.data.balance).toBe(20);
      expect(deduct.success ? `applied, balance ${deduct.data.balance}` : deduct.error.code).toBe("INSUFFICIENT_BALANCE");
      expect(await getBalance(db, id)).toBe(20);
      expect((await verifyLedger(db)).ok).toBe(true);
    } finally {
      await db.close();
    }
  });

  it("an operation given { transaction } never joins a batch: it rolls back with its transaction", async () => {
    const db = await openDatabase(url);
    try {
      const id = await newUser(setup, { balance: 100 });
      const outside = Array.from({ length: 50 }, (_, i) => atomicTokenOperation(db, id, "deduct", 1, `outside ${i}`));
      const inside = withTransaction(db, async (tx) => {
        const result = await atomicTokenOperation(db, id, "deduct", 7, "inside", { transaction: tx });
        expect(result.success).toBe(true);
        throw new Error("roll it back");
      });
      const [outsideResults, insideResult] = await Promise.all([Promise.all(outside), inside]);
      expect(insideResult.success).toBe(false);
      expect(outsideResults.every((r) => r.success)).toBe(true);
      expect(await getBalance(db, id)).toBe(50);
      expect((await verifyLedger(db)).ok).toBe(true);
    } finally {
      await db.close();
    }
  });

  it("batch: false applies each operation on its own and keeps every result", async () => {
    const db = await openDatabase(url, { batch: false });
    try {
      const id = await newUser(setup, { balance: 30 });
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => atomicTokenOperation(db, id, "deduct", 1, `op ${i}`)));
      expect(results.filter((r) => r.success).length).toBe(30);
      expect(results.filter((r) => !r.success).every((r) => !r.success && r.error.code === "INSUFFICIENT_BALANCE")).toBe(true);
      expect(db.ledger.submit).toBeUndefined();
      expect(await getBalance(db, id)).toBe(0);
    } finally {
      await db.close();
    }
  });

  it.runIf(dialect === "postgresql")("a connection killed mid-batch: every outcome reported is the truth of the ledger", async () => {
    const db = await openDatabase(url, { poolSize: 4 });
    const admin = postgres(pgAdminUrl(), { max: 1, onnotice: () => {} });
    const dbName = new URL(url).pathname.slice(1);
    try {
      const ids = [await newUser(setup, { balance: 200 }), await newUser(setup, { balance: 200 }), await newUser(setup, { balance: 200 })];
      await atomicTokenOperation(db, ids[0] as string, "credit", 1, "warm");
      for (let round = 0; round < 6; round++) {
        const calls = Array.from({ length: 1500 }, (_, i) => ({
          id: ids[i % 3] as string,
          op: i % 4 === 0 ? ("credit" as const) : ("deduct" as const),
          amount: 1 + (i % 3),
          key: `kill-${round}-${i}`,
        }));
        const pending = calls.map((c) => atomicTokenOperation(db, c.id, c.op, c.amount, "kill", { idempotencyKey: c.key }));
        // kill every backend of this database while the batches are in flight
        await new Promise((r) => setTimeout(r, 5 + round * 7));
        await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${dbName} AND pid <> pg_backend_pid()`;
        const results = await Promise.all(pending);
        // read afresh: the kill also closed the set-up connection
        const check = await openDatabase(url, { batch: false });
        const rows = await check.all<{ idempotency_key: string }>(
          sql`SELECT idempotency_key FROM token_transactions WHERE idempotency_key LIKE ${`kill-${round}-%`}`,
        );
        const applied = new Set(rows.map((r) => r.idempotency_key));
        const lies: string[] = [];
        const codes = new Map<string, number>();
        results.forEach((r, i) => {
          const key = (calls[i] as { key: string }).key;
          const tag = r.success ? "applied" : r.error.code;
          codes.set(tag, (codes.get(tag) ?? 0) + 1);
          if (r.success && !applied.has(key)) lies.push(`${key}: reported applied, no row`);
          if (!r.success && r.error.code !== "OUTCOME_UNKNOWN" && applied.has(key)) lies.push(`${key}: reported ${r.error.code}, row exists`);
        });
        expect(lies).toEqual([]);
        const report = await verifyLedger(check);
        await check.close();
        expect(report.ok).toBe(true);
      }
    } finally {
      await admin.end();
      await db.close();
    }
  });

  it.runIf(dialect === "postgresql")("a deadlock between lanes (keys shared across users) keeps each user's operations in call order", async () => {
    const db = await openDatabase(url, { poolSize: 4 });
    try {
      for (let round = 0; round < 8; round++) {
        const a = await newUser(setup, { balance: 10 });
        let b = await newUser(setup, { balance: 10 });
        // two users in different lanes (2 lanes over a pool of 4)
        while (laneOf(a, 2) === laneOf(b, 2)) b = await newUser(setup, { balance: 10 });
        const key = (i: number) => `dl-${round}-${i}`;
        const calls: Array<{ id: string; op: "credit" | "deduct"; amount: number; key?: string }> = [];
        // the same keys in opposite orders in the two lanes: their transactions deadlock
        for (let i = 0; i < 40; i++) calls.push({ id: a, op: "credit", amount: 1, key: key(i) });
        for (let i = 39; i >= 0; i--) calls.push({ id: b, op: "credit", amount: 1, key: key(i) });
        for (const id of [a, b]) {
          calls.push({ id, op: "deduct", amount: 45 }, { id, op: "credit", amount: 100 }, { id, op: "deduct", amount: 95 });
        }
        const results = await Promise.all(
          calls.map((c) => atomicTokenOperation(db, c.id, c.op, c.amount, "deadlock", c.key === undefined ? {} : { idempotencyKey: c.key })),
        );
        const tail = results.slice(-6).map((r) => (r.success ? r.data.balance : r.error.code));
        // whichever user's lane took the keys (lanes are not ordered against each other), each
        // user's last three calls answer as applied one after another in call order
        const won = [5, 105, 10];
        const lost = ["INSUFFICIENT_BALANCE", 110, 15];
        for (const part of [tail.slice(0, 3), tail.slice(3)]) expect([won, lost]).toContainEqual(part);
        expect((await verifyLedger(db)).ok).toBe(true);
      }
    } finally {
      await db.close();
    }
  });
});

/** The batcher's lane of a user (src/db/change-batcher.ts). */
function laneOf(userId: string, lanes: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % lanes;
}
