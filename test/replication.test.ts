/**
 * A primary with a streaming standby (harness/replica-set.mjs, synchronous replication), for what
 * issue 21 asks of roles: a write sent to a standby ends READ_ONLY (exit 3), "nothing changed",
 * with a hint naming target_session_attrs=read-write, on every path that writes (a token change
 * alone or batched, a hold, migrate, seed, clear); a two-host URL with read-write finds the
 * primary wherever it is listed (postgres.js took a standby for writable: it reads
 * default_transaction_read_only alone, which a standby reports as off).
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, holdTokens, openDatabase, type BriefDatabase } from "../src/index.js";
import { startReplicaSet, type ReplicaSet } from "../harness/replica-set.mjs";
import { cli } from "./support/databases.js";
import { newUser } from "./support/setup.js";

const PASSWORD = "replica-pw";

describe("a primary and its standby", () => {
  let set: ReplicaSet;
  let twoHosts: string;
  /** The standby alone (one host, no target_session_attrs). */
  let standby: string;
  let primary: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    set = await startReplicaSet({ password: PASSWORD });
    twoHosts = await set.createDatabase("briefs");
    const [a, b] = set.nodes;
    primary = a!.url.replace(/\/postgres$/, "/briefs");
    standby = b!.url.replace(/\/postgres$/, "/briefs");
    const migrated = await cli(["migrate", "--db", twoHosts, "--json"]);
    expect(migrated.code, migrated.stderr).toBe(0);
    db = await openDatabase(primary);
    await newUser(db, { id: "reader", balance: 100 });
    await waitForReplay();
  }, 120_000);

  afterAll(async () => {
    await db?.close();
    await set?.stop();
  });

  /** Until the standby has replayed every commit the primary made (synchronous: flushed, maybe not yet applied). */
  async function waitForReplay(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const [row] = await set.query(set.nodes[0]!, "SELECT replay_lsn >= pg_current_wal_lsn() AS caught_up FROM pg_stat_replication");
      if (row?.caught_up === true) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("the standby did not catch up");
  }

  async function balanceOnPrimary(userId: string): Promise<number> {
    const [user] = await db.all<{ token_balance: string | number }>(sql`SELECT token_balance FROM users WHERE id = ${userId}`);
    return Number(user?.token_balance);
  }

  it("a token change sent to the standby ends READ_ONLY, exit 3, nothing changed, with the hint", async () => {
    for (const args of [
      ["tokens", "deduct", "reader", "5"],
      ["tokens", "credit", "reader", "5", "--key", "k-standby"],
      ["tokens", "hold", "reader", "5"],
    ]) {
      const result = await cli([...args, "--db", standby, "--json"]);
      expect(result.code, `${args.join(" ")}: ${result.stdout}${result.stderr}`).toBe(3);
      expect(result.json?.error).toMatchObject({ code: "READ_ONLY" });
      expect(result.json?.error.message).toMatch(/nothing changed/);
      expect(result.json?.error.hint).toMatch(/target_session_attrs=read-write/);
      const text = await cli([...args, "--db", standby]);
      expect(text.code).toBe(3);
      expect(text.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(await balanceOnPrimary("reader")).toBe(100);
  });

  it("the library on the standby: alone, batched (many at once) and a hold all end READ_ONLY", async () => {
    const onStandby = await openDatabase(standby);
    try {
      const alone = await atomicTokenOperation(onStandby, "reader", "deduct", 1, "x");
      expect(alone).toMatchObject({ success: false, error: { code: "READ_ONLY" } });
      const many = await Promise.all(Array.from({ length: 20 }, () => atomicTokenOperation(onStandby, "reader", "deduct", 1, "x")));
      for (const outcome of many) expect(outcome).toMatchObject({ success: false, error: { code: "READ_ONLY" } });
      const hold = await holdTokens(onStandby, "reader", 1, "x");
      expect(hold).toMatchObject({ success: false, error: { code: "READ_ONLY" } });
    } finally {
      await onStandby.close();
    }
    expect(await balanceOnPrimary("reader")).toBe(100);
  });

  it("migrate (even with nothing to apply: it writes its own records first), seed and clear sent to the standby end READ_ONLY, exit 3", async () => {
    for (const args of [["migrate"], ["seed", "--local", "--scale", "small"], ["clear", "--local", "--yes"]]) {
      const result = await cli([...args, "--db", standby, "--json"]);
      expect(result.code, `${args.join(" ")}: ${result.stdout}${result.stderr}`).toBe(3);
      expect(result.json?.error).toMatchObject({ code: "READ_ONLY" });
    }
    expect(await balanceOnPrimary("reader")).toBe(100);
  });

  it("read-write with the standby listed first connects to the primary; standby/read-only to the standby", async () => {
    const [a, b] = set.nodes;
    const standbyFirst = `postgres://postgres:${PASSWORD}@127.0.0.1:${b!.port},127.0.0.1:${a!.port}/briefs?target_session_attrs=read-write`;
    const credited = await cli(["tokens", "credit", "reader", "1", "--db", standbyFirst, "--json"]);
    expect(credited.code, credited.stdout + credited.stderr).toBe(0);
    expect(await balanceOnPrimary("reader")).toBe(101);
    await waitForReplay();
    for (const attrs of ["read-only", "standby"]) {
      const primaryFirst = `postgres://postgres:${PASSWORD}@127.0.0.1:${a!.port},127.0.0.1:${b!.port}/briefs?target_session_attrs=${attrs}`;
      const refused = await cli(["tokens", "deduct", "reader", "1", "--db", primaryFirst, "--json"]);
      expect(refused.json?.error, `${attrs}: ${refused.stdout}${refused.stderr}`).toMatchObject({ code: "READ_ONLY" });
    }
    expect(await balanceOnPrimary("reader")).toBe(101);
  });
});
