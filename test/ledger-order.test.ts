/**
 * The ledger's order is the order its rows were applied: a user's history read by (created_at, id)
 * shows each balance_after as the running balance. On PostgreSQL a statement's start time is taken
 * before it waits for a lock, so a row stamped with it could sort before a row that committed while
 * it waited; ledger rows are stamped after the statement holds its locks (review of issue 11).
 * SQLite stamps inside its write lock, where no other write can come between, in milliseconds: a
 * row of another connection's millisecond is followed by an id after its own (the last tests).
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { writeAsAppBeforeHolds } from "../harness/busy-ledger.mjs";
import { newId } from "../src/core/ids.js";
import { PG_DEDUCT_STATEMENT } from "../src/db/pg/ledger.js";
import { atomicTokenOperation, captureHold, holdTokens, openDatabase, verifyLedger, withTransaction, type BriefDatabase } from "../src/index.js";
import { cli, DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";

describe.each(DIALECTS)("%s: ledger order", (dialect) => {
  let url: string;
  let db: BriefDatabase;
  let users = 0;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  /** The user's ledger in history order, each row with the running sum of the amounts up to it. */
  async function history(userId: string) {
    const rows = await db.all<{ amount: number | string; balance_after: number | string }>(
      sql`SELECT amount, balance_after FROM token_transactions WHERE user_id = ${userId} ORDER BY created_at, id`,
    );
    let sum = 0;
    return rows.map((row) => ({ amount: Number(row.amount), balanceAfter: Number(row.balance_after), running: (sum += Number(row.amount)) }));
  }

  // SQLite has one writer at a time: nothing commits while a write waits
  it.runIf(dialect === "postgresql").each([
    ["one statement", false],
    ["batched", true],
  ] as const)(
    "a capture (%s) that waited for its hold's row while a deduct committed sorts after that deduct",
    async (_, batch) => {
      const userId = `order-${++users}`;
      await newUser(db, { id: userId, balance: 100 });
      const capturer = await openDatabase(url, { batch });
      const locker = postgres(url, { max: 1, onnotice: () => {} });
      try {
        const held = await holdTokens(capturer, userId, 10, "brief generation");
        if (!held.success) throw held.error;
        await locker.unsafe("BEGIN");
        await locker`SELECT 1 FROM token_holds WHERE id = ${held.data.holdId} FOR UPDATE`;
        const capture = captureHold(capturer, held.data.holdId, 10);
        const waiting = sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%token_holds%'`;
        while ((await db.all(waiting)).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
        // the capture's statement has started; this deduct commits before it can go on
        expect(await atomicTokenOperation(db, userId, "deduct", 5, "meanwhile")).toMatchObject({ success: true, data: { balance: 95 } });
        await locker.unsafe("COMMIT");
        expect(await capture).toMatchObject({ success: true, data: { status: "captured", captured: 10, balance: 85 } });
        const rows = await history(userId);
        expect(rows.map((row) => row.amount)).toEqual([100, -5, -10]);
        for (const row of rows) expect(row.balanceAfter).toBe(row.running);
        expect(await verifyLedger(db)).toMatchObject({ ok: true });
      } finally {
        await locker.end();
        await capturer.close();
      }
    },
  );

  // every other ledger-writing path, made to wait for the user's row while another change of the
  // user commits: its rows must sort after that change (in history order, balance_after runs)
  it.runIf(dialect === "postgresql").each([
    ["a deduct", false],
    ["a credit", false],
    ["a keyed deduct", false],
    ["a deduct in withTransaction", false],
    ["a deduct in a read committed withTransaction", false],
    ["a batch over arrays", true],
    ["a pipelined batch (a key repeated inside it)", true],
    ["a capture", false],
    ["a batched capture", true],
  ] as const)("%s that waited for the user's row while another change committed sorts after it", async (what, batch) => {
    const userId = `order-${++users}`;
    await newUser(db, { id: userId, balance: 100 });
    const by = await openDatabase(url, { batch });
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const holds: string[] = [];
      if (what.includes("capture")) {
        for (let i = 0; i < 2; i++) {
          const held = await holdTokens(by, userId, 10, "brief generation");
          if (!held.success) throw held.error;
          holds.push(held.data.holdId);
        }
      }
      await locker.unsafe("BEGIN");
      await locker`SELECT 1 FROM users WHERE id = ${userId} FOR NO KEY UPDATE`;
      const ok = async (result: Promise<{ success: boolean; error?: unknown }>) => {
        const settled = await result;
        if (!settled.success) throw settled.error;
      };
      const deduct = (amount: number, options = {}) => ok(atomicTokenOperation(by, userId, "deduct", amount, what, options));
      const work: Record<typeof what, () => Promise<unknown>> = {
        "a deduct": () => deduct(3),
        "a credit": () => ok(atomicTokenOperation(by, userId, "credit", 3, what)),
        "a keyed deduct": () => deduct(3, { idempotencyKey: `${userId}-k` }),
        "a deduct in withTransaction": () => ok(withTransaction(by, async (tx) => ok(atomicTokenOperation(by, userId, "deduct", 3, what, { transaction: tx })))),
        // serializable (the default) fails the waiting statement and runs the transaction again
        "a deduct in a read committed withTransaction": () =>
          ok(withTransaction(by, async (tx) => ok(atomicTokenOperation(by, userId, "deduct", 3, what, { transaction: tx })), { isolation: "read committed" })),
        "a batch over arrays": () => Promise.all([1, 2, 3, 4, 5].map((n) => deduct(n))),
        "a pipelined batch (a key repeated inside it)": () =>
          Promise.all([deduct(1, { idempotencyKey: `${userId}-k` }), deduct(1, { idempotencyKey: `${userId}-k` }), deduct(2), deduct(3)]),
        "a capture": () => ok(captureHold(by, holds[0] as string, 4)),
        "a batched capture": () => Promise.all(holds.map((id) => ok(captureHold(by, id, 4)))),
      };
      const running = work[what]();
      const waiting = sql`SELECT query FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND backend_type = 'client backend'`;
      let waited: Array<{ query: string }>;
      while ((waited = await db.all(waiting)).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      // the path named is the one waiting
      const marker = { "a batch over arrays": "WITH ORDINALITY", "a pipelined batch (a key repeated inside it)": "WITH prior AS", "a batched capture": "held AS MATERIALIZED" }[
        what as string
      ];
      if (marker !== undefined) expect(waited.map((row) => row.query).join("\n")).toContain(marker);
      // its statement has started and waits; this change commits before it can go on
      // (stamped now: its transaction began before the waiting statement did)
      await locker`UPDATE users SET token_balance = token_balance - 5 WHERE id = ${userId}`;
      await locker`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at)
        SELECT ${newId()}, id, -5, 'deduct', 'meanwhile', token_balance, clock_timestamp() FROM users WHERE id = ${userId}`;
      await locker.unsafe("COMMIT");
      await running;
      const rows = await history(userId);
      expect(rows.findIndex((row) => row.amount === -5)).toBe(1);
      for (const row of rows) expect(row.balanceAfter).toBe(row.running);
      expect(await verifyLedger(db)).toMatchObject({ ok: true });
    } finally {
      await locker.end();
      await by.close();
    }
  });

  // a row written in plain SQL by an app that leaves created_at to the column's default (the app
  // deployed before holds, as the busy writers of test/online-migrate.test.ts write), made to take
  // the user's row after a change that began later: the default must stamp it after that change
  // (now(), the transaction's start, stamped it before: the row the busy-ledger run once flagged)
  it.runIf(dialect === "postgresql").each([
    ["one statement that waited behind a migration's lock on the ledger", true],
    ["a statement of a transaction that began before the other change", false],
  ] as const)("a row stamped by the column's default: %s, sorts after the change that committed first", async (_, behindLock) => {
    const userId = `order-${++users}`;
    await newUser(db, { id: userId, balance: 100 });
    const app = postgres(url, { max: 1, onnotice: () => {} });
    const other = postgres(url, { max: 1, onnotice: () => {} });
    try {
      let written: Promise<unknown> | undefined;
      await other.unsafe("BEGIN");
      if (behindLock) {
        // as an online migration's ADD COLUMN does, briefly: the app's statement starts, then waits
        await other.unsafe("LOCK TABLE token_transactions IN ACCESS EXCLUSIVE MODE");
        // (a postgres.js query runs once awaited)
        written = (async () => await writeAsAppBeforeHolds(app, userId, -1, `app-${userId}`))();
        const waiting = sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%during migrate%'`;
        while ((await db.all(waiting)).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      } else {
        await app.unsafe("BEGIN");
        await app`SELECT 1`;
      }
      // briefdb's own deduct, on the user's row first, committed
      await other.unsafe(PG_DEDUCT_STATEMENT, [newId(), userId, 5, "meanwhile", null, null]);
      await other.unsafe("COMMIT");
      if (written === undefined) {
        await writeAsAppBeforeHolds(app, userId, -1, `app-${userId}`);
        await app.unsafe("COMMIT");
      } else {
        await written;
      }
      const rows = await history(userId);
      expect(rows.map((row) => row.amount)).toEqual([100, -5, -1]);
      for (const row of rows) expect(row.balanceAfter).toBe(row.running);
      expect(await verifyLedger(db)).toMatchObject({ ok: true, outOfOrder: [] });
    } finally {
      await app.end();
      await other.end();
    }
  });

  it("deducts and captures at once on one user from two database objects: every balance_after is the running balance in history order", async () => {
    const userId = `order-${++users}`;
    await newUser(db, { id: userId, balance: 10_000 });
    const other = await openDatabase(url);
    try {
      const pair = async (by: BriefDatabase) => {
        const held = await holdTokens(by, userId, 10, "generation");
        if (!held.success) throw held.error;
        const captured = await captureHold(by, held.data.holdId, 7);
        if (!captured.success) throw captured.error;
      };
      const deduct = async (by: BriefDatabase) => {
        const result = await atomicTokenOperation(by, userId, "deduct", 3, "plain");
        if (!result.success) throw result.error;
      };
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const by = i % 2 === 0 ? db : other;
          return i % 3 === 0 ? deduct(by) : pair(by);
        }),
      );
      const rows = await history(userId);
      expect(rows.length).toBe(41);
      for (const row of rows) expect(row.balanceAfter).toBe(row.running);
    } finally {
      await other.close();
    }
  });
});

describe.each(DIALECTS)("%s: tokens verify checks the ledger's order", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  /** A user of 100 and two deducts, the later stamped 1 ms before the earlier (at `earlierAtMs`): the balance still reconciles. */
  async function swappedDeducts(userId: string, earlierAtMs: number): Promise<void> {
    await newUser(db, { id: userId, balance: 100 });
    for (const amount of [10, 20]) expect(await atomicTokenOperation(db, userId, "deduct", amount, "swapped")).toMatchObject({ success: true });
    const at = (ms: number) => db.time.fromEpochMs(ms);
    await db.run(sql`UPDATE token_transactions SET created_at = ${at(earlierAtMs - 10)} WHERE user_id = ${userId} AND amount = 100`);
    await db.run(sql`UPDATE token_transactions SET created_at = ${at(earlierAtMs)} WHERE user_id = ${userId} AND amount = -10`);
    await db.run(sql`UPDATE token_transactions SET created_at = ${at(earlierAtMs - 1)} WHERE user_id = ${userId} AND amount = -20`);
  }

  async function removeUser(userId: string): Promise<void> {
    await db.run(sql`DELETE FROM token_transactions WHERE user_id = ${userId}`);
    await db.run(sql`DELETE FROM users WHERE id = ${userId}`);
  }

  it("a balance_after that is not the running balance in history order is a violation, though every balance reconciles", async () => {
    try {
      await swappedDeducts("swapped-now", Date.now());
      const report = await verifyLedger(db);
      expect(report.drifting).toEqual([]);
      expect(report.ok).toBe(false);
      expect(report.outOfOrder).toEqual([expect.objectContaining({ userId: "swapped-now", rows: 2, legacy: false })]);
    } finally {
      await removeUser("swapped-now");
    }
  });

  it("rows out of order written before briefdb stamped rows in apply order are reported, not a violation", async () => {
    try {
      await swappedDeducts("swapped-then", Date.parse("2026-11-20T12:00:00Z"));
      const report = await verifyLedger(db);
      expect(report.ok).toBe(true);
      expect(report.outOfOrder).toEqual([
        { userId: "swapped-then", rows: 2, firstAt: new Date("2026-11-20T11:59:59.999Z"), lastAt: new Date("2026-11-20T12:00:00Z"), legacy: true },
      ]);
    } finally {
      await removeUser("swapped-then");
    }
  });

  /** Runs `body` with this database's record of migration 0003 saying it was applied at `at` (or not at all), then puts it back. */
  async function withOrderingMigrationAppliedAt(at: Date | null, body: () => Promise<void>): Promise<void> {
    const tag = "0003_ledger_stamped_at_insert";
    const [record] = await db.all<{ hash: string; applied_at: number | string }>(sql`SELECT hash, applied_at FROM briefdb_migrations WHERE tag = ${tag}`);
    if (record === undefined) throw new Error(`${tag} is not recorded`);
    if (at === null) await db.run(sql`DELETE FROM briefdb_migrations WHERE tag = ${tag}`);
    else await db.run(sql`UPDATE briefdb_migrations SET applied_at = ${at.getTime()} WHERE tag = ${tag}`);
    try {
      await body();
    } finally {
      if (at === null) await db.run(sql`INSERT INTO briefdb_migrations (tag, hash, applied_at) VALUES (${tag}, ${record.hash}, ${Number(record.applied_at)})`);
      else await db.run(sql`UPDATE briefdb_migrations SET applied_at = ${Number(record.applied_at)} WHERE tag = ${tag}`);
    }
  }

  // a rolling upgrade: an older briefdb kept writing after 2026-12-06, and this database applied
  // the ordering migration on 2027-01-10; the cutoff is that application, not a date briefdb names
  it("a database that applied the ordering migration later: rows out of order before it are legacy, rows after it a violation", async () => {
    await withOrderingMigrationAppliedAt(new Date("2027-01-10T00:00:00Z"), async () => {
      try {
        await swappedDeducts("swapped-before-migrate", Date.parse("2027-01-05T12:00:00Z"));
        const before = await verifyLedger(db);
        expect(before.ok).toBe(true);
        expect(before.outOfOrder).toEqual([
          {
            userId: "swapped-before-migrate",
            rows: 2,
            firstAt: new Date("2027-01-05T11:59:59.999Z"),
            lastAt: new Date("2027-01-05T12:00:00Z"),
            legacy: true,
          },
        ]);
        expect(before.orderedSince).toEqual(new Date("2027-01-10T00:00:00Z"));
        await swappedDeducts("swapped-after-migrate", Date.parse("2027-01-10T00:00:00.500Z"));
        const after = await verifyLedger(db);
        expect(after.ok).toBe(false);
        expect(after.drifting).toEqual([]);
        expect(after.outOfOrder).toEqual([
          expect.objectContaining({ userId: "swapped-after-migrate", rows: 2, legacy: false }),
          expect.objectContaining({ userId: "swapped-before-migrate", rows: 2, legacy: true }),
        ]);
      } finally {
        await removeUser("swapped-before-migrate");
        await removeUser("swapped-after-migrate");
      }
    });
  });

  it("CLI: tokens verify names when this database applied the ordering migration, in the note and as orderedSince", async () => {
    await withOrderingMigrationAppliedAt(new Date("2027-01-10T00:00:00Z"), async () => {
      try {
        await swappedDeducts("swapped-cli", Date.parse("2027-01-05T12:00:00Z"));
        const human = await cli(["tokens", "verify", "--db", url]);
        expect([human.code, human.stderr]).toEqual([0, ""]);
        expect(human.stdout).toContain("stamped before this database applied migration 0003 (2027-01-10T00:00:00.000Z)");
        expect(human.stdout).toContain("swapped-cli");
        const json = await cli(["tokens", "verify", "--db", url, "--json"]);
        expect(json.code).toBe(0);
        expect(json.json).toMatchObject({ ok: true, orderedSince: "2027-01-10T00:00:00.000Z", outOfOrder: [{ userId: "swapped-cli", legacy: true }] });
      } finally {
        await removeUser("swapped-cli");
      }
    });
  });

  it("a database that applied the ordering migration early: rows out of order after it are a violation, whatever their date", async () => {
    await withOrderingMigrationAppliedAt(new Date("2026-11-01T00:00:00Z"), async () => {
      try {
        await swappedDeducts("swapped-since-early", Date.parse("2026-11-20T12:00:00Z"));
        const report = await verifyLedger(db);
        expect(report.ok).toBe(false);
        expect(report.outOfOrder).toEqual([expect.objectContaining({ userId: "swapped-since-early", legacy: false })]);
      } finally {
        await removeUser("swapped-since-early");
      }
    });
  });

  it("a database with no record of the ordering migration is refused (NOT_MIGRATED), not passed as all legacy", async () => {
    await withOrderingMigrationAppliedAt(null, async () => {
      try {
        await swappedDeducts("swapped-unrecorded", Date.now());
        await expect(verifyLedger(db)).rejects.toMatchObject({ code: "NOT_MIGRATED", message: expect.stringContaining("0003_ledger_stamped_at_insert") });
      } finally {
        await removeUser("swapped-unrecorded");
      }
    });
  });
});

// SQLite stamps in milliseconds: two connections can apply rows of one user in one millisecond,
// and the row applied second must still sort after the first, whatever the other's id
describe("sqlite: a row applied in the millisecond of another connection's row sorts after it", () => {
  let url: string;
  let db: BriefDatabase;
  let users = 0;

  beforeAll(async () => {
    ({ url, db } = await initTest("sqlite"));
  });
  afterAll(() => destroyTest(db));
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** The highest id another process could have made in millisecond `ms` (its sequence at the top). */
  function lastIdOf(ms: number): string {
    const time = ms.toString(16).padStart(12, "0");
    return `${time.slice(0, 8)}-${time.slice(8, 12)}-7fff-bfff-ffffffffffff`;
  }

  it.each(["a deduct", "a credit", "batched deducts", "a deduct in withTransaction", "a capture"] as const)("%s", async (what) => {
    const userId = `tie-${++users}`;
    await newUser(db, { id: userId, balance: 100 });
    const by = await openDatabase(url, { batch: what === "batched deducts" });
    try {
      const held = await holdTokens(by, userId, 10, "generation");
      if (!held.success) throw held.error;
      const ms = Date.now();
      vi.spyOn(Date, "now").mockReturnValue(ms);
      // another process's deduct of 1, in this very millisecond
      await db.run(sql`UPDATE users SET token_balance = token_balance - 1 WHERE id = ${userId}`);
      await db.run(sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at)
        SELECT ${lastIdOf(ms)}, id, -1, 'deduct', 'other process', token_balance, ${ms} FROM users WHERE id = ${userId}`);
      const ok = async (result: Promise<{ success: boolean; error?: unknown }>) => {
        const settled = await result;
        if (!settled.success) throw settled.error;
      };
      const work = {
        "a deduct": () => ok(atomicTokenOperation(by, userId, "deduct", 3, what)),
        "a credit": () => ok(atomicTokenOperation(by, userId, "credit", 3, what)),
        "batched deducts": () => Promise.all([2, 3, 4].map((n) => ok(atomicTokenOperation(by, userId, "deduct", n, what)))),
        "a deduct in withTransaction": () => ok(withTransaction(by, async (tx) => ok(atomicTokenOperation(by, userId, "deduct", 3, what, { transaction: tx })))),
        "a capture": () => ok(captureHold(by, held.data.holdId, 4)),
      };
      await work[what]();
      const rows = await db.all<{ amount: number; balance_after: number; created_at: number; reason: string }>(
        sql`SELECT amount, balance_after, created_at, reason FROM token_transactions WHERE user_id = ${userId} ORDER BY created_at, id`,
      );
      expect(rows[1]?.reason).toBe("other process");
      let running = 0;
      for (const row of rows) expect(row.balance_after).toBe((running += row.amount));
      expect(rows.every((row) => row.created_at <= ms)).toBe(true);
      vi.restoreAllMocks();
      expect(await verifyLedger(db)).toMatchObject({ ok: true });
    } finally {
      vi.restoreAllMocks();
      await by.close();
    }
  });
});
