/**
 * Batching (issue 12) under hostile use, in-process through the library: close() while changes
 * are queued or in flight, locks held elsewhere, the server going away. Each answer is checked
 * against what the ledger holds afterwards.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, getBalance, openDatabase, verifyLedger, type BriefDatabase } from "../src/index.js";
import { DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";

describe.each(DIALECTS)("%s: batching under hostile use", (dialect) => {
  let url: string;
  let setup: BriefDatabase;

  beforeAll(async () => {
    ({ url, db: setup } = await initTest(dialect));
  });
  afterAll(() => destroyTest(setup));

  it("close() lets every change called before it finish, queued ones included", async () => {
    const user = `closing-${dialect}`;
    await newUser(setup, { id: user, balance: 0 });
    // pool of 2 on PostgreSQL: one slot, so more calls than one batch takes leaves some queued
    const db = await openDatabase(url, { poolSize: 2 });
    const calls = Array.from({ length: 1200 }, (_, i) => atomicTokenOperation(db, user, "credit", 1, `c${i}`));
    const closed = db.close();
    const results = await Promise.all(calls);
    await closed;
    expect(results.filter((r) => !r.success).map((r) => !r.success && r.error.code)).toEqual([]);
    expect(await getBalance(setup, user)).toBe(1200);
    expect((await verifyLedger(setup)).ok).toBe(true);
  });
});

describe.each(DIALECTS)("%s: a batch with a repeated key and missing briefs", (dialect) => {
  let url: string;
  let setup: BriefDatabase;

  beforeAll(async () => {
    ({ url, db: setup } = await initTest(dialect));
  });
  afterAll(() => destroyTest(setup));

  it("answers each change as called: a missing brief only where the guard held, a refusal before it", async () => {
    const user = `briefless-${dialect}`;
    await newUser(setup, { id: user, balance: 3 });
    // pool of 2 on PostgreSQL: one batch; the repeated key sends it down the pipelined path
    const db = await openDatabase(url, { poolSize: 2 });
    try {
      const calls: Array<[op: "credit" | "deduct", amount: number, options: { briefId?: string; idempotencyKey?: string }]> = [
        ["deduct", 1, { idempotencyKey: `twice-${dialect}` }],
        ["deduct", 5, { briefId: "no-such-brief" }],
        ["deduct", 2, { briefId: "no-such-brief" }],
        ["deduct", 1, { idempotencyKey: `twice-${dialect}` }],
        ["credit", 4, { briefId: "no-such-brief" }],
        ["deduct", 2, {}],
        ["credit", 1, {}],
        ["deduct", 1, { briefId: "no-such-brief" }],
      ];
      const results = await Promise.all(calls.map(([op, amount, options], i) => atomicTokenOperation(db, user, op, amount, `c${i}`, options)));
      expect(results.map((r) => (r.success ? `${r.data.balance}${r.data.replayed ? " replayed" : ""}` : r.error.code))).toEqual([
        "2",
        "INSUFFICIENT_BALANCE",
        "BRIEF_NOT_FOUND",
        "2 replayed",
        "BRIEF_NOT_FOUND",
        "0",
        "1",
        "BRIEF_NOT_FOUND",
      ]);
      expect(await getBalance(setup, user)).toBe(1);
      expect((await verifyLedger(setup)).ok).toBe(true);
    } finally {
      await db.close();
    }
  });
});

describe("postgresql: a user's row locked elsewhere while its batch runs", () => {
  let url: string;
  let setup: BriefDatabase;

  beforeAll(async () => {
    ({ url, db: setup } = await initTest("postgresql"));
  });
  afterAll(() => destroyTest(setup));

  it("once one of the user's changes gave up on the lock, its later ones in the batch give up with it instead of each waiting in turn", async () => {
    const [locked, free] = ["row-locked", "row-free"];
    for (const id of [locked, free]) await newUser(setup, { id, balance: 100 });
    const holder = postgres(url, { max: 1, onnotice: () => {} });
    const reserved = await holder.reserve();
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    // pool of 2: one slot, so the calls below go as one batch
    const db = await openDatabase(url, { poolSize: 2, lockTimeoutMs: 1000 });
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await reserved.unsafe("COMMIT");
    };
    try {
      await reserved.unsafe("BEGIN");
      await reserved.unsafe(`SELECT 1 FROM users WHERE id = '${locked}' FOR UPDATE`);
      const calls = Promise.all(
        Array.from({ length: 12 }, (_, i) => atomicTokenOperation(db, i % 2 === 0 ? locked : free, "deduct", 1, `d${i}`)),
      );
      let answered = false;
      void calls.finally(() => (answered = true));
      // the batch's statement waits first, then the user's first change on its own: a third wait
      // is a later change waiting again; the lock is let go then, and that change would apply
      const waits = new Set<string>();
      while (!answered && waits.size < 3) {
        const rows = await watcher.unsafe<Array<{ pid: number; started: string }>>(
          "SELECT pid, query_start::text AS started FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'briefdb' AND wait_event_type = 'Lock'",
        );
        for (const row of rows) waits.add(`${row.pid} ${row.started}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await release();
      const results = await calls;
      expect(results.map((r) => (r.success ? r.data.balance : r.error.code))).toEqual(
        Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? "LOCK_TIMEOUT" : 100 - (i + 1) / 2)),
      );
      expect(await getBalance(setup, locked)).toBe(100);
      expect((await verifyLedger(setup)).ok).toBe(true);
    } finally {
      await release();
      reserved.release();
      await db.close();
      await holder.end();
      await watcher.end();
    }
  });

  it("close() does not wait for ever on a batch stuck behind a lock that never frees (lockTimeoutMs 0)", async () => {
    const user = "never-freed";
    await newUser(setup, { id: user, balance: 100 });
    const holder = postgres(url, { max: 1, onnotice: () => {} });
    const reserved = await holder.reserve();
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    const db = await openDatabase(url, { lockTimeoutMs: 0 });
    try {
      await reserved.unsafe("BEGIN");
      await reserved.unsafe(`SELECT 1 FROM users WHERE id = '${user}' FOR UPDATE`);
      // the first waits on the lock on the server; the second waits in the batcher behind it (same user)
      const sent = atomicTokenOperation(db, user, "deduct", 1, "sent");
      for (;;) {
        const [row] = await watcher.unsafe<Array<{ n: string }>>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'briefdb' AND wait_event_type = 'Lock'",
        );
        if (Number(row?.n) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const queued = atomicTokenOperation(db, user, "deduct", 1, "never sent");
      await db.close();
      // sent: cancelled on the server by close(); never sent: refused by it; nothing changed either way
      expect(await sent).toMatchObject({ success: false, error: { code: "CLOSED", message: expect.stringMatching(/cancelled on the server; nothing changed/) } });
      expect(await queued).toMatchObject({ success: false, error: { code: "CLOSED", message: expect.stringMatching(/nothing changed/) } });
    } finally {
      await reserved.unsafe("ROLLBACK");
      reserved.release();
      await holder.end();
      await watcher.end();
    }
    const [row] = await setup.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM token_transactions WHERE reason IN ('sent', 'never sent')`);
    expect(Number(row?.n)).toBe(0);
  });
});
