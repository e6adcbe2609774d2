/**
 * A refusal is only reported when it is true, and a serialization failure is not a failure
 * (issue 9, items 2 and 14): a deduct that meets its user deleted and inserted again by another
 * transaction (a re-seed) is tried again rather than refused on the row it never saw; on a
 * PostgreSQL database whose transactions are SERIALIZABLE, concurrent deducts of one user all
 * succeed, 40001 being retried on the hot path.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, openDatabase, type BriefDatabase } from "../src/index.js";
import { DIALECTS, spawnCli, type TestDialect } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";
import { ended, openHolder, untilWaiting } from "./support/locks.js";
import { timestampLiteral } from "./support/tables.js";

function literal(dialect: TestDialect): string {
  return (timestampLiteral(dialect) as unknown as { queryChunks: Array<{ value: string[] }> }).queryChunks[0]!.value[0]!;
}

describe.each(DIALECTS)("%s: a user deleted and inserted again while a deduct waits", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  it("the deduct applies to the new row instead of being refused on it", async () => {
    const user = "reseeded";
    // enough for the deduct's condition on the old row, so that it waits for that row's lock
    await newUser(db, { id: user, balance: 5 });
    const at = literal(dialect);
    const holder = await openHolder(dialect, url);
    // a re-seed: the user and its ledger removed and written again, with 100 tokens this time
    await holder.run(`DELETE FROM token_transactions WHERE user_id = '${user}'`);
    await holder.run(`DELETE FROM users WHERE id = '${user}'`);
    await holder.run(
      `INSERT INTO users (id, email, name, token_balance, created_at, updated_at) VALUES ('${user}', '${user}@example.test', '${user}', 100, ${at}, ${at})`,
    );
    await holder.run(
      `INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at) VALUES ('reseed-open', '${user}', 100, 'credit', 'opening balance', 100, ${at})`,
    );
    const child = spawnCli(["tokens", "deduct", user, "1", "--db", url, "--json"]);
    const result = ended(child);
    try {
      await untilWaiting(dialect, url, child);
    } finally {
      await holder.commit();
    }
    const { code, stdout, stderr } = await result;
    expect(stderr).toBe("");
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, balance: 99 });
    expect(code).toBe(0);
    const [row] = await db.all<{ b: number | string }>(sql`SELECT token_balance AS b FROM users WHERE id = ${user}`);
    expect(Number(row?.b)).toBe(99);
  });
});

describe("postgresql: default_transaction_isolation = serializable", () => {
  let url: string;

  beforeAll(async () => {
    let setup: BriefDatabase;
    ({ url, db: setup } = await initTest("postgresql"));
    const name = new URL(url).pathname.slice(1);
    await setup.exec(`ALTER DATABASE ${name} SET default_transaction_isolation = serializable`);
    await setup.close();
  });

  // unbatched, each deduct waits on a connection of its own; batched, the first waits alone and
  // the other five queue behind it in this process, then go as one batch
  it.each([
    { batch: false, waiting: 6 },
    { batch: true, waiting: 1 },
  ])("concurrent deducts of one user all succeed: 40001 is retried on the hot path (batch: $batch)", async ({ batch, waiting }) => {
    const user = `serial-${batch}`;
    const db = await openDatabase(url, { poolSize: 6, batch });
    try {
      await newUser(db, { id: user, balance: 100 });
      const [isolation] = await db.all<{ level: string }>(sql`SELECT current_setting('transaction_isolation') AS level`);
      expect(isolation?.level).toBe("serializable");
      // the deducts queue behind a lock that changes the row, so each of them meets a concurrent update
      const holder = postgres(url, { max: 1, onnotice: () => {} });
      const reserved = await holder.reserve();
      await reserved.unsafe("BEGIN");
      await reserved.unsafe(`UPDATE users SET updated_at = now() WHERE id = '${user}'`);
      const deducts = Array.from({ length: 6 }, (_, i) => atomicTokenOperation(db, user, "deduct", 1, `serial ${i}`));
      try {
        // read on a connection of its own: the holder's transaction keeps its first view of
        // pg_stat_activity, and the pool's six connections are the waiting deducts
        const watcher = postgres(url, { max: 1, onnotice: () => {} });
        for (let tries = 0; tries < 1200; tries++) {
          const [row] = await watcher.unsafe<Array<{ n: string }>>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
          );
          if (Number(row?.n) >= waiting) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await watcher.end();
    } finally {
      await reserved.unsafe("COMMIT");
      reserved.release();
      await holder.end();
    }
    const results = await Promise.all(deducts);
    expect(results.map((r) => (r.success ? "ok" : r.error.code))).toEqual(Array(6).fill("ok"));
    const [row] = await db.all<{ b: number | string }>(sql`SELECT token_balance AS b FROM users WHERE id = ${user}`);
    expect(Number(row?.b)).toBe(94);
    } finally {
      await db.close();
    }
  });

  it("lone batched deducts of two processes on one user all succeed: a batch's own statement retries 40001 too", async () => {
    const user = "serial-two-apps";
    const setup = await openDatabase(url, { batch: false });
    await newUser(setup, { id: user, balance: 1000 });
    await setup.close();
    // two app servers, each calling one deduct at a time: each batch is a change alone, on its own statement
    const apps = [await openDatabase(url), await openDatabase(url)];
    try {
      const results = await Promise.all(
        apps.map(async (db, app) => {
          const codes: string[] = [];
          for (let i = 0; i < 60; i++) {
            const result = await atomicTokenOperation(db, user, "deduct", 1, `app ${app} deduct ${i}`);
            codes.push(result.success ? "ok" : result.error.code);
          }
          return codes;
        }),
      );
      expect(results.flat().filter((code) => code !== "ok")).toEqual([]);
      const [row] = await (apps[0] as BriefDatabase).all<{ b: number | string }>(sql`SELECT token_balance AS b FROM users WHERE id = ${user}`);
      expect(Number(row?.b)).toBe(880);
    } finally {
      for (const db of apps) await db.close();
    }
  });
});
