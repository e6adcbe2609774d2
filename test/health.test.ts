import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cli, DIALECTS, freshDatabase } from "./support/databases.js";
import { TEST_PG_PASSWORD } from "./support/global-setup.js";

describe.each(DIALECTS)("%s: health", (dialect) => {
  it("reports a migrated database healthy with latency, version and migrations", async () => {
    const db = await freshDatabase(dialect);
    await cli(["migrate", "--db", db]);
    const result = await cli(["health", "--db", db, "--samples", "7", "--json"]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    const report = result.json!;
    expect(report).toMatchObject({ ok: true, healthy: true, dialect, samples: 7, migrations: { applied: 2, pending: 0 } });
    expect(report.serverVersion).toMatch(dialect === "sqlite" ? /^SQLite 3\./ : /^PostgreSQL \d+/);
    const { min, median, max } = report.latencyMs;
    expect(min).toBeGreaterThanOrEqual(0); // a SQLite ping can round to 0 ms on a fast machine
    expect(min).toBeLessThanOrEqual(median);
    expect(median).toBeLessThanOrEqual(max);
    expect(result.stdout).not.toContain(TEST_PG_PASSWORD);
    expect(report.target).toContain(dialect === "sqlite" ? "file:" : ":***@");
  });

  it("is unhealthy (exit 1, NOT_MIGRATED with a hint) while migrations are pending", async () => {
    const db = await freshDatabase(dialect);
    if (dialect === "sqlite") {
      const missing = await cli(["health", "--db", db, "--json"]);
      expect(missing.code).toBe(1);
      expect(missing.json?.error.code).toBe("DB_UNREACHABLE");
      return;
    }
    const result = await cli(["health", "--db", db, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ ok: false, healthy: false, error: { code: "NOT_MIGRATED" } });
    expect(result.stderr).toMatch(/^error: .*pending.*hint: run `briefdb migrate`/);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("prints people a readable report", async () => {
    const db = await freshDatabase(dialect);
    await cli(["migrate", "--db", db]);
    const result = await cli(["health", "--db", db]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/status\s+healthy/);
    expect(result.stdout).toMatch(/migrations\s+2 applied, 0 pending/);
    expect(result.stdout).toMatch(/latency\s+min [\d.]+ ms · median [\d.]+ ms · max [\d.]+ ms \(5 samples\)/);
    expect(result.stdout).not.toContain(TEST_PG_PASSWORD);
  });
});

describe("postgresql: connection forms", () => {
  const socketDir = inject("pgSocketDir");

  it.skipIf(socketDir === "")("works over a Unix socket (?host=/dir), as libpq users write it", async () => {
    const tcp = new URL(await freshDatabase("postgresql"));
    const socketUrl = `postgres://${tcp.username}:${tcp.password}@${tcp.pathname}?host=${socketDir}&port=${tcp.port}`;
    const migrate = await cli(["migrate", "--db", socketUrl, "--json"]);
    expect(migrate.code, migrate.stderr).toBe(0);
    const health = await cli(["health", "--db", socketUrl, "--json"]);
    expect(health.json).toMatchObject({ ok: true, healthy: true, dialect: "postgresql" });
    expect(health.json?.target).toBe(`postgres://${tcp.username}:***@${tcp.pathname}?host=${socketDir}&port=${tcp.port}`);
    // a socket is local: the local-only commands accept it
    const race = await cli(["race-test", "--n", "20", "--db", socketUrl, "--json"]);
    expect(race.json).toMatchObject({ ok: true, successes: 10 });
  });
});

describe("postgresql: unreachable servers", () => {
  let silent: Server;
  const sockets: Socket[] = [];
  let silentPort = 0;
  let closedPort = 0;

  beforeAll(async () => {
    // a server that accepts connections and never says a word
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentPort = (silent.address() as { port: number }).port;
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    closedPort = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it("a refused connection is DB_UNREACHABLE, exit 1, password redacted", async () => {
    const result = await cli(["health", "--db", `postgres://app:hunter2secret@127.0.0.1:${closedPort}/briefs`, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ ok: false, error: { code: "DB_UNREACHABLE" } });
    expect(result.stdout + result.stderr).not.toContain("hunter2secret");
    expect(result.stderr).toMatch(/^error: cannot reach postgres:\/\/app:\*\*\*@127\.0\.0\.1/);
  });

  it("a server that never answers is DB_UNREACHABLE within --timeout, not a hang", async () => {
    // a hang is caught by the kill after 20 s (cli() rejects), not by timing the run
    const result = await cli(["health", "--timeout", "700", "--db", `postgres://app:hunter2secret@127.0.0.1:${silentPort}/briefs`], {
      timeoutMs: 20_000,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: cannot reach .*CONNECT_TIMEOUT|timeout/i);
    expect(result.stdout + result.stderr).not.toContain("hunter2secret");
  });

  it("a wrong password is DB_UNREACHABLE and never printed", async () => {
    const db = new URL(await freshDatabase("postgresql"));
    db.password = "not-the-password";
    const result = await cli(["health", "--db", db.toString()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: cannot reach .*password authentication failed/);
    expect(result.stdout + result.stderr).not.toContain("not-the-password");
  });
});
