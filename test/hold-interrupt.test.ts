/**
 * An interrupted hold, capture or release never lies, as a deduct's does not (test/interrupt.test.ts):
 * waiting on a real lock held by another connection, SIGINT or SIGTERM cancels it (on PostgreSQL
 * with the protocol's cancel request, waited for) and exits 130 / 143 with one line; once the lock
 * is released, nothing has changed. Before, the process exited 130 "interrupted" while the
 * statement it had sent went on waiting on the server and committed when the lock was let go: a
 * hold placed (and its id lost) or a capture charged behind a "nothing changed". A connection that
 * breaks while one waits is OUTCOME_UNKNOWN (exit 4), as for a deduct.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { holdTokens, type BriefDatabase } from "../src/index.js";
import { DIALECTS, spawnCli } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";
import { ended, openHolder, untilNoStatements, untilWaiting } from "./support/locks.js";

describe.each(DIALECTS)("%s: a signal while a hold write waits on a lock", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  const state = async (user: string) => {
    const [row] = await db.all<{ b: number | string; h: number | string; n: number | string; active: number | string }>(sql`
      SELECT token_balance AS b, held_tokens AS h,
        (SELECT count(*) FROM token_transactions t WHERE t.user_id = u.id) AS n,
        (SELECT count(*) FROM token_holds s WHERE s.user_id = u.id AND s.status = 'active') AS active
      FROM users u WHERE id = ${user}`);
    return { balance: Number(row?.b), held: Number(row?.h), ledgerRows: Number(row?.n), activeHolds: Number(row?.active) };
  };

  it.each([
    ["hold", "SIGINT", 130],
    ["capture", "SIGTERM", 143],
    ["release", "SIGINT", 130],
  ] as const)("%s, %s: cancelled, exit %i, one line, and nothing applies once the lock is let go", async (write, signal, status) => {
    const user = `waiter-${write}`;
    await newUser(db, { id: user, balance: 10 });
    let args: string[];
    let lock: string;
    if (write === "hold") {
      args = ["tokens", "hold", user, "3"];
      lock = `SELECT 1 FROM users WHERE id = '${user}' FOR UPDATE`;
    } else {
      const placed = await holdTokens(db, user, 4, "to settle");
      if (!placed.success) throw placed.error;
      const holdId = placed.data.holdId;
      args = write === "capture" ? ["tokens", "capture", holdId, "2"] : ["tokens", "release", holdId];
      lock = `SELECT 1 FROM token_holds WHERE id = '${holdId}' FOR UPDATE`;
    }
    const before = await state(user);
    const holder = await openHolder(dialect, url);
    if (dialect === "postgresql") await holder.run(lock);
    const child = spawnCli([...args, "--db", url, "--json"]);
    const result = ended(child);
    try {
      await untilWaiting(dialect, url, child);
      child.kill(signal);
      const { code, stdout, stderr } = await result;
      expect(code).toBe(status);
      const lines = stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      // on SQLite the signal may land before the write began waiting: then it is the plain
      // interruption of a command that had changed nothing
      expect(lines[0]).toMatch(dialect === "postgresql" ? new RegExp(`^error: interrupted before the ${write} was applied; nothing changed$`) : /^error: interrupted/);
      expect(JSON.parse(stdout)).toMatchObject({ ok: false, error: { code: "CANCELLED" } });
    } finally {
      // released only now: a write that was not really stopped would commit here
      await holder.rollback();
    }
    if (dialect === "postgresql") await untilNoStatements(url);
    expect(await state(user)).toEqual(before);
  });
});

describe("postgresql: a hold write whose connection breaks while it waits", () => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await initTest("postgresql"));
    await newUser(db, { id: "cut", balance: 10 });
  });
  afterAll(() => destroyTest(db));

  it.each(["hold", "capture"] as const)("%s: OUTCOME_UNKNOWN (exit 4) with how to repeat it safely, never 'cannot reach'", async (write) => {
    const placed = await holdTokens(db, "cut", 2, "to settle");
    if (!placed.success) throw placed.error;
    const holder = await openHolder("postgresql", url);
    await holder.run(write === "hold" ? "SELECT 1 FROM users WHERE id = 'cut' FOR UPDATE" : `SELECT 1 FROM token_holds WHERE id = '${placed.data.holdId}' FOR UPDATE`);
    const args = write === "hold" ? ["tokens", "hold", "cut", "3", "--key", "gen-cut"] : ["tokens", "capture", placed.data.holdId, "1"];
    const child = spawnCli([...args, "--db", url, "--json"]);
    const result = ended(child);
    try {
      await untilWaiting("postgresql", url, child);
      // the server ends the waiting session: the statement had been sent
      await db.all(sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'briefdb' AND wait_event_type = 'Lock'`);
      const { code, stdout, stderr } = await result;
      expect(JSON.parse(stdout)).toMatchObject({ ok: false, error: { code: "OUTCOME_UNKNOWN" } });
      expect(JSON.parse(stdout).error.hint).toMatch(write === "hold" ? /same --key gen-cut/ : /repeat the same capture/);
      expect(stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(code).toBe(4);
    } finally {
      await holder.rollback();
    }
  });
});
