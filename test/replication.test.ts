/**
 * A primary with a streaming standby (harness/replica-set.mjs, synchronous replication), for what
 * issue 21 asks of roles: a write sent to a standby ends READ_ONLY (exit 3), "nothing changed",
 * with a hint naming target_session_attrs=read-write, on every path that writes (a token change
 * alone or batched, a hold, migrate, seed, clear); a two-host URL with read-write finds the
 * primary wherever it is listed (postgres.js took a standby for writable: it reads
 * default_transaction_read_only alone, which a standby reports as off). `health` names the role,
 * the host reached, the standbys and their lag; `--require` gates on a role, as serve's /readyz
 * does; an asynchronous standby is a warning, a synchronous one missing a problem.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, healthHandler, holdTokens, openDatabase, type BriefDatabase } from "../src/index.js";
import { startReplicaSet, type ReplicaSet } from "../harness/replica-set.mjs";
import { cli, freshDatabase } from "./support/databases.js";
import { startServe } from "./support/serve.js";
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
    // the target line names the server reached among those listed
    expect(migrated.json).toMatchObject({ server: `127.0.0.1:${a!.port}` });
    expect((await cli(["migrate", "--db", twoHosts])).stdout).toMatch(new RegExp(`target .*briefs\\?target_session_attrs=read-write \\(reached 127\\.0\\.0\\.1:${a!.port}\\)`));
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

  it("health names the role, the host reached, each standby with its sync state and lag; --require gates on it", async () => {
    const [a, b] = set.nodes;
    const onPrimary = await cli(["health", "--db", twoHosts, "--json"]);
    expect(onPrimary.code, onPrimary.stdout + onPrimary.stderr).toBe(0);
    expect(onPrimary.json).toMatchObject({ healthy: true, role: "primary", server: `127.0.0.1:${a!.port}`, warnings: [] });
    expect(onPrimary.json?.replication.standbys).toEqual([
      expect.objectContaining({ name: "node_b", state: "streaming", syncState: "sync", lagBytes: expect.any(Number) }),
    ]);
    const text = await cli(["health", "--db", twoHosts]);
    expect(text.stdout).toMatch(new RegExp(`primary at 127\\.0\\.0\\.1:${a!.port}`));
    expect(text.stdout).toMatch(/replication\s+1 standby: node_b sync, streaming, [\d.]+ (B|kB|MB)(, [\d.]+ s)? behind/);

    const standbyFirst = `postgres://postgres:${PASSWORD}@127.0.0.1:${a!.port},127.0.0.1:${b!.port}/briefs?target_session_attrs=standby`;
    const onStandby = await cli(["health", "--db", standbyFirst, "--json"]);
    expect(onStandby.code, onStandby.stdout + onStandby.stderr).toBe(0);
    expect(onStandby.json).toMatchObject({
      healthy: true,
      role: "standby",
      server: `127.0.0.1:${b!.port}`,
      replication: { role: "standby", receiving: true, replayLagBytes: expect.any(Number), replayLagSeconds: expect.any(Number) },
    });
    expect((await cli(["health", "--db", standbyFirst])).stdout).toMatch(/standby at .*\n[\s\S]*streaming from/);

    const gate = await cli(["health", "--require", "primary", "--db", standbyFirst, "--json"]);
    expect(gate.code).toBe(1);
    expect(gate.json?.error).toMatchObject({ code: "UNHEALTHY" });
    expect(gate.json?.problems.join()).toMatch(/--require primary: the server at 127\.0\.0\.1:\d+ is a standby/);
    expect((await cli(["health", "--require", "standby", "--db", twoHosts, "--json"])).code).toBe(1);
    expect((await cli(["health", "--require", "sync", "--db", twoHosts, "--json"])).code).toBe(0);
    expect((await cli(["health", "--require", "primary", "--db", twoHosts, "--json"])).code).toBe(0);
    const bad = await cli(["health", "--require", "leader", "--db", twoHosts, "--json"]);
    expect(bad.code).toBe(2);
    expect(bad.json?.error.message).toMatch(/--require must be one of primary, standby, sync/);
  });

  it("readiness with require primary: 200 on the primary, 503 on the standby (the handler and serve --require)", async () => {
    const onStandby = await openDatabase(standby);
    try {
      const probe = (db: BriefDatabase) => healthHandler(db, { require: "primary" })(new Request("http://app.test/readyz"));
      expect((await probe(db)).status).toBe(200);
      const refused = await probe(onStandby);
      expect(refused.status).toBe(503);
      expect(await refused.json()).toMatchObject({ ok: false, role: "standby", reason: expect.stringMatching(/is a standby/) });
    } finally {
      await onStandby.close();
    }
    const server = await startServe(["--require", "primary", "--db", standby]);
    try {
      expect((await fetch(`${server.base}/readyz`)).status).toBe(503);
    } finally {
      await server.stop();
    }
  });
});

describe("asynchronous replication, then a standby gone", () => {
  let set: ReplicaSet;
  let twoHosts: string;

  beforeAll(async () => {
    set = await startReplicaSet({ password: PASSWORD, synchronous: false });
    twoHosts = await set.createDatabase("briefs");
    expect((await cli(["migrate", "--db", twoHosts, "--json"])).code).toBe(0);
  }, 120_000);
  afterAll(() => set?.stop());

  it("health warns that a failover may lose acknowledged commits; --require sync fails", async () => {
    const report = await cli(["health", "--db", twoHosts, "--json"]);
    expect(report.code).toBe(0);
    expect(report.json?.replication.standbys).toEqual([expect.objectContaining({ name: "node_b", syncState: "async" })]);
    expect(report.json?.warnings.join()).toMatch(/replication is asynchronous \(node_b\): a failover may lose the last commits/);
    expect((await cli(["health", "--db", twoHosts])).stdout).toMatch(/warning\s+replication is asynchronous/);
    const gate = await cli(["health", "--require", "sync", "--db", twoHosts, "--json"]);
    expect(gate.code).toBe(1);
    expect(gate.json?.problems.join()).toMatch(/no synchronous standby streams/);
  });

  it("no standby left: a warning for a several-host URL; a synchronous_standby_names naming a missing standby is a problem (commits wait)", async () => {
    const [a, b] = set.nodes;
    await set.kill(b!);
    const alone = await cli(["health", "--db", twoHosts, "--json"]);
    expect(alone.code).toBe(0);
    expect(alone.json?.replication.standbys).toEqual([]);
    expect(alone.json?.warnings.join()).toMatch(/no standby streams from this primary/);
    // one server named: a one-server set-up, nothing to warn about
    const single = await cli(["health", "--db", a!.url, "--json"]);
    expect(single.json?.warnings).toEqual([]);
    await set.query(a!, "ALTER SYSTEM SET synchronous_standby_names = 'node_b'");
    await set.query(a!, "SELECT pg_reload_conf()");
    try {
      const waiting = await cli(["health", "--db", twoHosts, "--json"]);
      expect(waiting.code).toBe(1);
      expect(waiting.json?.problems.join()).toMatch(/synchronous_standby_names = 'node_b' but no synchronous standby is connected: every commit waits/);
    } finally {
      await set.query(a!, "ALTER SYSTEM RESET synchronous_standby_names");
      await set.query(a!, "SELECT pg_reload_conf()");
    }
  });
});

describe("SQLite", () => {
  it("health's role is embedded; --require primary passes, standby and sync fail", async () => {
    const url = await freshDatabase("sqlite");
    expect((await cli(["migrate", "--db", url])).code).toBe(0);
    const report = await cli(["health", "--db", url, "--json"]);
    expect(report.json).toMatchObject({ healthy: true, role: "embedded", server: null, replication: null });
    expect((await cli(["health", "--require", "primary", "--db", url, "--json"])).code).toBe(0);
    const gate = await cli(["health", "--require", "standby", "--db", url, "--json"]);
    expect(gate.code).toBe(1);
    expect(gate.json?.problems).toEqual(["--require standby: SQLite has no standbys"]);
  });
});
