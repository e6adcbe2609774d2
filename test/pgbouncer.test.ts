/**
 * Through a transaction pooler with nothing configured for briefdb (issue 20, item 4): a real
 * PgBouncer (Debian's package, pool_mode=transaction, fewer server connections than briefdb's pool,
 * so that a named prepared statement made on one server connection is missing on the next) in
 * front of the test server. It refuses the lock_timeout startup parameter; briefdb finds that on
 * its first statement and bounds every transaction's lock waits with SET LOCAL instead. migrate,
 * seed, deducts, credits and holds (CLI and library, many callers at once) and a race-test work
 * through it, and a row locked elsewhere ends a deduct with LOCK_TIMEOUT instead of a wait
 * without end. A PgBouncer told to drop the parameter (ignore_startup_parameters) is found too.
 * An online index build, which needs a session of its own, is refused: SESSION_REQUIRED, nothing
 * changed. With CI=true this file runs or fails; elsewhere it is skipped only without pgbouncer.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  atomicTokenOperation,
  captureHold,
  holdTokens,
  openDatabase,
  releaseHold,
  verifyLedger,
  withTransaction,
  type BriefDatabase,
} from "../src/index.js";
import { forgetHoldsMigration } from "../harness/busy-ledger.mjs";
import { ALL_MIGRATIONS, cli, freshDatabase, pgAdminUrl } from "./support/databases.js";
import { openHolder } from "./support/locks.js";
import { newUser } from "./support/setup.js";
import { pgBouncerBinary, startPgBouncer, type PgBouncer } from "./support/pgbouncer.js";

const runs = process.env.CI === "true" || pgBouncerBinary() !== undefined;
/** Server connections PgBouncer keeps per database: fewer than briefdb's pool of 10. */
const SERVER_CONNECTIONS = "3";

describe.runIf(runs)("through PgBouncer in transaction mode, nothing configured for briefdb", () => {
  let bouncer: PgBouncer;
  let direct: string;
  let pooled: string;
  let db: BriefDatabase;

  const state = async (user: string) => {
    const [row] = await db.all<{ b: number | string; h: number | string; n: number | string }>(
      sql`SELECT token_balance AS b, held_tokens AS h, (SELECT count(*) FROM token_transactions WHERE user_id = ${user}) AS n FROM users WHERE id = ${user}`,
    );
    return { balance: Number(row?.b), held: Number(row?.h), ledgerRows: Number(row?.n) };
  };
  /** A transaction on the direct port that holds `user`'s row locked until rolled back. */
  const lockRow = async (user: string) => {
    const holder = await openHolder("postgresql", direct);
    await holder.run(`SELECT 1 FROM users WHERE id = '${user}' FOR UPDATE`);
    return holder;
  };

  beforeAll(async () => {
    bouncer = await startPgBouncer(pgAdminUrl(), { default_pool_size: SERVER_CONNECTIONS });
    direct = await freshDatabase("postgresql");
    pooled = bouncer.through(direct);
  });
  afterAll(async () => {
    await db?.close();
    await bouncer?.stop();
  });

  it("migrate applies every migration through it, and leaves no advisory lock held", async () => {
    const run = await cli(["migrate", "--db", pooled, "--json"]);
    expect(run.code, `${run.stderr}\n${bouncer.log()}`).toBe(0);
    expect(run.json).toMatchObject({ applied: ALL_MIGRATIONS });
    const status = await cli(["migrate", "--status", "--db", pooled, "--json"]);
    expect(status.json).toMatchObject({ ok: true, pending: [] });
    const admin = postgres(direct, { max: 1, onnotice: () => {} });
    try {
      // this database's only: other test files seed on the same server at the same time
      expect(await admin`SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).toHaveLength(0);
    } finally {
      await admin.end();
    }
    db = await openDatabase(pooled);
  });

  it("seed --local, then the token commands through it (CLI)", async () => {
    const seed = await cli(["seed", "--local", "--users", "5", "--briefs", "3", "--reviews", "0", "--transactions", "20", "--db", pooled, "--json"]);
    expect(seed.code, seed.stderr).toBe(0);
    const user = await newUser(db, { balance: 100 });
    const run = (...args: string[]) => cli(["tokens", ...args, "--db", pooled, "--json"]);
    expect((await run("deduct", user, "30")).json).toMatchObject({ balance: 70 });
    expect((await run("credit", user, "5", "--key", "top-up-1")).json).toMatchObject({ balance: 75 });
    expect((await run("credit", user, "5", "--key", "top-up-1")).json).toMatchObject({ balance: 75, replayed: true });
    const hold = await run("hold", user, "40");
    expect(hold.code, hold.stderr).toBe(0);
    expect((await run("deduct", user, "36")).json).toMatchObject({ error: { code: "INSUFFICIENT_BALANCE" } });
    expect((await run("capture", hold.json!.holdId, "25")).json).toMatchObject({ status: "captured" });
    expect((await run("balance", user)).json).toMatchObject({ balance: 50, held: 0 });
    expect((await run("verify")).json).toMatchObject({ ok: true });
  });

  it("many callers at once through the library: deducts, credits, holds, captures, releases, every balance its ledger", async () => {
    const users = await Promise.all([1, 2, 3].map(() => newUser(db, { balance: 1000 })));
    const work = users.flatMap((user) =>
      Array.from({ length: 20 }, async (_, i) => {
        if (i % 4 === 0) return atomicTokenOperation(db, user, "credit", 3, "top-up", { idempotencyKey: `${user}-credit-${i}` });
        if (i % 4 === 1) {
          const hold = await holdTokens(db, user, 10, "generation");
          if (!hold.success) return hold;
          return i % 8 === 1 ? captureHold(db, hold.data.holdId, 7) : releaseHold(db, hold.data.holdId);
        }
        return atomicTokenOperation(db, user, "deduct", 5, "brief generation");
      }),
    );
    const results = await Promise.all(work);
    expect(results.filter((result) => !result.success)).toEqual([]);
    // per user: 5 credits of 3, 10 deducts of 5, 5 holds of which 3 captured at 7 (i = 1, 9, 17)
    for (const user of users) expect(await state(user)).toMatchObject({ balance: 1000 + 15 - 50 - 21, held: 0 });
    expect(await verifyLedger(db)).toMatchObject({ ok: true });
    // a transaction of the app's through it: the deduct inside it commits with it
    const [user] = users as [string];
    const inside = await withTransaction(db, (tx) => atomicTokenOperation(db, user, "deduct", 4, "in a transaction", { transaction: tx }));
    expect(inside.success).toBe(true);
    expect(await state(user)).toMatchObject({ balance: 940 });
  });

  it("race-test through it holds every invariant", async () => {
    const result = await cli(["race-test", "--n", "200", "--concurrency", "8", "--db", pooled, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({ ok: true, n: 200, successes: 100, rejected: 100, errors: 0 });
    const holds = await cli(["race-test", "--mode", "holds", "--n", "200", "--concurrency", "8", "--db", pooled, "--json"]);
    expect(holds.code, holds.stderr).toBe(0);
    expect(holds.json).toMatchObject({ ok: true, errors: 0 });
  });

  it("a row locked elsewhere: the deduct through it ends with LOCK_TIMEOUT, not a wait without end; nothing changed", async () => {
    const user = await newUser(db, { balance: 10 });
    const holder = await lockRow(user);
    const short = await openDatabase(pooled, { lockTimeoutMs: 200 });
    try {
      const result = await cli(["tokens", "deduct", user, "3", "--lock-timeout", "300", "--db", pooled, "--json"]);
      expect(result.json?.error).toMatchObject({ code: "LOCK_TIMEOUT" });
      expect(result.code).toBe(1);
      // the library: alone (one statement), batched beside others, a hold, and in the app's transaction
      const other = await newUser(short, { balance: 10 });
      const [alone, ...batch] = await Promise.all([
        atomicTokenOperation(short, user, "deduct", 3, "waits"),
        atomicTokenOperation(short, user, "deduct", 1, "waits too"),
        atomicTokenOperation(short, other, "deduct", 1, "not locked"),
        holdTokens(short, user, 2, "waits"),
      ]);
      expect(!alone.success && alone.error.code).toBe("LOCK_TIMEOUT");
      expect(batch.map((r) => (r.success ? "ok" : r.error.code))).toEqual(["LOCK_TIMEOUT", "ok", "LOCK_TIMEOUT"]);
      const inside = await withTransaction(short, (tx) => atomicTokenOperation(short, user, "deduct", 3, "in a transaction", { transaction: tx }));
      expect(!inside.success && inside.error.code).toBe("LOCK_TIMEOUT");
    } finally {
      await short.close();
      await holder.rollback();
    }
    expect(await state(user)).toEqual({ balance: 10, held: 0, ledgerRows: 1 });
  });

  it("a deduct waiting on a lock through it is cancelled by its signal: CANCELLED, nothing changed", async () => {
    const user = await newUser(db, { balance: 10 });
    const holder = await lockRow(user);
    const patient = await openDatabase(pooled, { lockTimeoutMs: 0 });
    try {
      const controller = new AbortController();
      const deduct = atomicTokenOperation(patient, user, "deduct", 3, "waits", { signal: controller.signal });
      await untilWaitingOnLock();
      controller.abort();
      const result = await deduct;
      expect(!result.success && result.error.code).toBe("CANCELLED");
    } finally {
      await patient.close();
      await holder.rollback();
    }
    expect(await state(user)).toEqual({ balance: 10, held: 0, ledgerRows: 1 });
  });

  it("a deduct whose server connection dies under it (terminated while it waits for a lock): OUTCOME_UNKNOWN (exit 4), and the next call is not DB_ERROR", async () => {
    const user = await newUser(db, { balance: 10 });
    const holder = await lockRow(user);
    let locked = true;
    const admin = postgres(direct, { max: 1, onnotice: () => {} });
    try {
      // PgBouncer passes the server's FATAL on, then ends the client with its own "server conn
      // crashed?" (08P01), which postgres.js keeps and hands to the first call on the connection
      // made again (never sent): a lost connection too, not that call's own failure (DB_ERROR)
      const kill = async () => {
        await untilWaitingOnLock();
        await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
      };
      const [run] = await Promise.all([cli(["tokens", "deduct", user, "3", "--db", pooled, "--json"]), kill()]);
      expect(run.json?.error).toMatchObject({ code: "OUTCOME_UNKNOWN" });
      expect(run.code).toBe(4);
      const library = await openDatabase(pooled, { batch: false, poolSize: 1 });
      try {
        const [result] = await Promise.all([atomicTokenOperation(library, user, "deduct", 3, "waits"), kill()]);
        expect(!result.success && result.error.code).toBe("OUTCOME_UNKNOWN");
        await holder.rollback();
        locked = false;
        const next = await atomicTokenOperation(library, user, "deduct", 1, "next");
        expect(["ok", "OUTCOME_UNKNOWN"]).toContain(next.success ? "ok" : next.error.code);
      } finally {
        await library.close();
      }
    } finally {
      await admin.end();
      if (locked) await holder.rollback();
    }
    // the killed deducts are nowhere; the next one, if it ran, has its row
    const after = await state(user);
    expect(after.ledgerRows).toBeLessThanOrEqual(2);
    expect(after.balance).toBe(10 - (after.ledgerRows - 1));
  });

  it("an online index build is refused through it: SESSION_REQUIRED, nothing changed; --offline through it, or the database's own port, applies it", async () => {
    const url = await freshDatabase("postgresql");
    expect((await cli(["migrate", "--db", url])).code).toBe(0);
    await forgetHoldsMigration(url); // 0002 pending on a ledger at 0001: its unique index on token_transactions builds online
    const through = bouncer.through(url);
    const refused = await cli(["migrate", "--db", through, "--json"]);
    expect(refused.code).toBe(3);
    expect(refused.json?.error).toMatchObject({
      code: "SESSION_REQUIRED",
      message: expect.stringContaining("token_transactions_hold_id_unique"),
      hint: expect.stringContaining("own port rather than the pooler's"),
    });
    expect(refused.stderr.trimEnd().split("\n")).toHaveLength(1);
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      expect(await admin`SELECT to_regclass('token_holds') AS t`).toEqual([{ t: null }]);
      expect(await admin`SELECT step FROM briefdb_migration_steps WHERE tag = '0002_holds'`).toEqual([]);
      expect(await admin`SELECT tag FROM briefdb_migrations WHERE tag = '0002_holds'`).toEqual([]);
      expect(await admin`SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).toHaveLength(0);
    } finally {
      await admin.end();
    }
    const offline = await cli(["migrate", "--offline", "--db", through, "--json"]);
    expect(offline.code, offline.stderr).toBe(0);
    expect(offline.json).toMatchObject({ applied: ["0002_holds"], online: false });
    await forgetHoldsMigration(url);
    const own = await cli(["migrate", "--db", url, "--json"]); // the database's own port: built online
    expect(own.code, own.stderr).toBe(0);
    expect(own.json).toMatchObject({ applied: ["0002_holds"], online: true });
  });

  it("a PgBouncer that drops lock_timeout (ignore_startup_parameters) is found too: the bound holds", async () => {
    const dropping = await startPgBouncer(pgAdminUrl(), { default_pool_size: SERVER_CONNECTIONS, ignore_startup_parameters: "lock_timeout" });
    const user = await newUser(db, { balance: 10 });
    const holder = await lockRow(user);
    try {
      const result = await cli(["tokens", "deduct", user, "3", "--lock-timeout", "300", "--db", dropping.through(direct), "--json"]);
      expect(result.json?.error).toMatchObject({ code: "LOCK_TIMEOUT" });
      const library = await openDatabase(dropping.through(direct), { lockTimeoutMs: 200 });
      try {
        const results = await Promise.all([1, 2, 3].map(() => atomicTokenOperation(library, user, "deduct", 1, "waits")));
        expect(results.map((r) => (r.success ? "ok" : r.error.code))).toEqual(["LOCK_TIMEOUT", "LOCK_TIMEOUT", "LOCK_TIMEOUT"]);
      } finally {
        await library.close();
      }
    } finally {
      await holder.rollback();
      await dropping.stop();
    }
    expect(await state(user)).toEqual({ balance: 10, held: 0, ledgerRows: 1 });
  });

  /** Until one session of the database waits on a lock (pg_stat_activity, read on the direct port). */
  async function untilWaitingOnLock(): Promise<void> {
    const admin = postgres(direct, { max: 1, onnotice: () => {} });
    try {
      for (;;) {
        const [row] = await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
        if (row?.n === 1) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await admin.end();
    }
  }
});
