/**
 * Batching (issue 12) under hostile use, in-process through the library: close() while changes
 * are queued or in flight, locks held elsewhere, the server going away. Each answer is checked
 * against what the ledger holds afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, createUser, getBalance, openDatabase, verifyLedger, type BriefDatabase } from "../src/index.js";
import { DIALECTS } from "./support/databases.js";
import { migratedDatabase } from "./support/tables.js";

describe.each(DIALECTS)("%s: batching under hostile use", (dialect) => {
  let url: string;
  let setup: BriefDatabase;

  beforeAll(async () => {
    ({ url, db: setup } = await migratedDatabase(dialect));
  });
  afterAll(() => setup.close());

  it("close() lets every change called before it finish, queued ones included", async () => {
    const user = `closing-${dialect}`;
    await createUser(setup, { id: user, email: `${user}@example.test`, name: user, openingBalance: 0 });
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
