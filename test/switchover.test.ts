/**
 * A primary that goes away (issue 21, items 3 and 5), on harness/replica-set.mjs: with no writable
 * server a call ends within the connect timeout with the code that says why (READ_ONLY: only a
 * standby answered; DB_UNREACHABLE: nothing answered), nothing changed, and the same pool writes
 * again once a standby is promoted; postgres.js 3.4, left to try the hosts itself, waited for ever
 * (its connect timeout restarts with each host). race-test and tokens verify on a two-host URL;
 * migrate killed with its primary during a switchover finishes on the next run.
 */
import { createServer, type AddressInfo } from "node:net";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, openDatabase, type BriefDatabase } from "../src/index.js";
import { startReplicaSet, type ReplicaSet } from "../harness/replica-set.mjs";
import { cli } from "./support/databases.js";
import { newUser } from "./support/setup.js";
import { startServe } from "./support/serve.js";

const PASSWORD = "switch-pw";
/** The key of migrate's advisory lock (src/db/pg/database.ts), as briefdb sends it. */
const MIGRATION_LOCK_KEY = String(0x62726965666462);

const serve = (url: string) => startServe(["--db", url, "--timeout", "1500"]);

/** The call's outcome, or "still waiting" when it has not ended long after every timeout involved. */
async function endsOrWaits<T>(call: Promise<T>): Promise<T | "still waiting"> {
  let timer: NodeJS.Timeout | undefined;
  const waiting = new Promise<"still waiting">((resolve) => (timer = setTimeout(() => resolve("still waiting"), 20_000)));
  try {
    return await Promise.race([call, waiting]);
  } finally {
    clearTimeout(timer);
  }
}

describe("the primary goes away", () => {
  let set: ReplicaSet;
  let twoHosts: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    set = await startReplicaSet({ password: PASSWORD });
    twoHosts = await set.createDatabase("briefs");
    const migrated = await cli(["migrate", "--db", twoHosts, "--json"]);
    expect(migrated.code, migrated.stderr).toBe(0);
    db = await openDatabase(twoHosts, { timeoutMs: 1500 });
    await newUser(db, { id: "sw", balance: 100 });
  }, 120_000);

  afterAll(async () => {
    await db?.close();
    await set?.stop();
  });

  async function balanceOn(url: string): Promise<number> {
    const [row] = await set.query({ ...set.nodes[1]!, url: url.replace(/\/postgres$/, "/briefs") }, "SELECT token_balance FROM users WHERE id = 'sw'");
    return Number(row?.token_balance);
  }

  it("race-test and tokens verify run on a two-host URL", async () => {
    const race = await cli(["race-test", "--n", "40", "--concurrency", "4", "--db", twoHosts, "--json"]);
    expect(race.code, race.stdout + race.stderr).toBe(0);
    const verify = await cli(["tokens", "verify", "--db", twoHosts, "--json"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.json?.ok).toBe(true);
  });

  it("the primary gone, the standby not promoted: a write ends READ_ONLY within the connect timeout (postgres.js waited for ever), nothing changed; once promoted, the same pool writes", async () => {
    const before = await atomicTokenOperation(db, "sw", "deduct", 1, "before");
    expect(before.success, JSON.stringify(before)).toBe(true);
    const server = await serve(twoHosts);
    const ready = async () => (await endsOrWaits(fetch(`${server.base}/readyz`).then((response) => response.status)));
    expect(await ready()).toBe(200);
    const [a, b] = set.nodes;
    await set.kill(a!);
    expect(await ready()).toBe(503);
    const alone = await endsOrWaits(atomicTokenOperation(db, "sw", "deduct", 1, "gap", { idempotencyKey: "gap-1" }));
    expect(alone).toMatchObject({ success: false, error: { code: "READ_ONLY" } });
    const many = await endsOrWaits(Promise.all(["gap-2", "gap-3", "gap-4"].map((key) => atomicTokenOperation(db, "sw", "deduct", 1, "gap", { idempotencyKey: key }))));
    expect(many).not.toBe("still waiting");
    for (const outcome of many as Array<{ success: boolean; error?: { code: string } }>) expect(outcome).toMatchObject({ success: false, error: { code: "READ_ONLY" } });
    const viaCli = await cli(["tokens", "deduct", "sw", "1", "--key", "gap-cli", "--db", twoHosts, "--timeout", "1500", "--json"]);
    expect(viaCli.code, viaCli.stdout + viaCli.stderr).toBe(3);
    expect(viaCli.json?.error).toMatchObject({ code: "READ_ONLY" });
    expect(viaCli.json?.error.message).toMatch(/nothing changed/);
    const text = await cli(["tokens", "deduct", "sw", "1", "--db", twoHosts, "--timeout", "1500"]);
    expect(text.code).toBe(3);
    expect(text.stderr.trim().split("\n")).toHaveLength(1);
    expect(await balanceOn(b!.url)).toBe(99);

    await set.promote(b!);
    const after = await endsOrWaits(atomicTokenOperation(db, "sw", "deduct", 1, "after", { idempotencyKey: "gap-1" }));
    expect(after, JSON.stringify(after)).toMatchObject({ success: true, data: { balance: 98 } });
    const viaCliAfter = await cli(["tokens", "deduct", "sw", "1", "--key", "gap-cli", "--db", twoHosts, "--json"]);
    expect(viaCliAfter.code, viaCliAfter.stderr).toBe(0);
    expect(await balanceOn(b!.url)).toBe(97);
    // serve follows too, without a restart
    expect(await ready()).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it("no server answering at all: DB_UNREACHABLE within the connect timeout, from the library and the CLI (exit 1, one line)", async () => {
    // node b is the primary now, alone: it goes too
    await set.kill(set.nodes[1]!);
    const outcome = await endsOrWaits(atomicTokenOperation(db, "sw", "deduct", 1, "none"));
    expect(outcome).toMatchObject({ success: false, error: { code: "DB_UNREACHABLE" } });
    const viaCli = await cli(["tokens", "balance", "sw", "--db", twoHosts, "--timeout", "1500"]);
    expect(viaCli.code, viaCli.stderr).toBe(1);
    expect(viaCli.stderr.trim().split("\n")).toHaveLength(1);
    expect(viaCli.stderr).not.toMatch(/switch-pw/);
  });
});

describe("migrate during a switchover", () => {
  let set: ReplicaSet;

  beforeAll(async () => {
    set = await startReplicaSet({ password: PASSWORD });
  }, 120_000);

  afterAll(async () => {
    await set?.stop();
  });

  it("a server listed first that takes connections and never answers (a frozen machine) does not keep the primary listed after it from being reached (each server has its share of the connect timeout)", async () => {
    const frozen = createServer(() => {}); // accepts, says nothing
    await new Promise<void>((resolve) => frozen.listen(0, "127.0.0.1", resolve));
    const port = (frozen.address() as AddressInfo).port;
    const [a] = set.nodes;
    const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port},127.0.0.1:${a!.port}/postgres?target_session_attrs=read-write`;
    const db = await openDatabase(url, { timeoutMs: 3000 });
    try {
      const [row] = await db.all<{ standby: boolean }>(sql`SELECT pg_is_in_recovery() AS standby`);
      expect(row?.standby).toBe(false);
    } finally {
      await db.close();
      frozen.close();
    }
  });

  it("migrate killed with its primary while it waits for its lock finishes on the new primary, or fails with a code and the next run finishes", async () => {
    const fresh = await set.createDatabase("fresh");
    const [a, b] = set.nodes;
    // another migrator holds the lock on the primary: this one polls for it, in short transactions
    const holder = postgres(a!.url.replace(/\/postgres$/, "/fresh"), { max: 1, onnotice: () => {} });
    await holder.unsafe(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY}::bigint)`);
    const running = cli(["migrate", "--db", fresh, "--json"]);
    for (let i = 0; ; i++) {
      const [row] = await holder.unsafe(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'fresh' AND application_name = 'briefdb' AND query LIKE '%pg_try_advisory%'",
      );
      if (row?.n > 0) break;
      if (i > 600) throw new Error("migrate never polled for its lock");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await set.kill(a!);
    await holder.end({ timeout: 0 }).catch(() => undefined);
    await set.promote(b!);
    const first = await running;
    // finished on the new primary, or failed with one line and a code of the contract
    if (first.code !== 0) {
      expect(first.json?.error?.code, first.stdout + first.stderr).toMatch(/^(DB_UNREACHABLE|OUTCOME_UNKNOWN|READ_ONLY)$/);
      expect(first.stderr).not.toMatch(/\n\s+at /);
    }
    const again = await cli(["migrate", "--db", fresh, "--json"]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const check = await cli(["migrate", "--check", "--db", fresh, "--json"]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const verify = await cli(["tokens", "verify", "--db", fresh, "--json"]);
    expect(verify.code, verify.stderr).toBe(0);
    const onFresh = await openDatabase(fresh);
    try {
      const tables = await onFresh.all<{ name: string }>(sql`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
      expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(["users", "token_transactions", "token_holds", "briefs"]));
      await newUser(onFresh, { id: "after-migrate", balance: 10 });
      expect(await atomicTokenOperation(onFresh, "after-migrate", "deduct", 3, "x")).toMatchObject({ success: true, data: { balance: 7 } });
    } finally {
      await onFresh.close();
    }
    console.log(`migrate during the switchover: first run exit ${first.code} ${first.json?.error?.code ?? ""}, next run exit ${again.code}`);
  }, 60_000);
});
