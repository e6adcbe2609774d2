import { openSync, writeSync, closeSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import Sqlite from "better-sqlite3";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ALL_MIGRATIONS, cli, DIALECTS, freshDatabase } from "./support/databases.js";
import { TEST_PG_PASSWORD } from "./support/global-setup.js";
import { withDatabase } from "./support/tables.js";

/** Overwrites the root page of `table` in a closed SQLite file with a fixed pattern of garbage. */
function damageTablePage(path: string, table: string): void {
  const file = new Sqlite(path, { readonly: true });
  const { rootpage } = file.prepare("SELECT rootpage FROM sqlite_master WHERE name = ?").get(table) as { rootpage: number };
  const pageSize = file.pragma("page_size", { simple: true }) as number;
  file.close();
  const garbage = Buffer.from(Array.from({ length: pageSize }, (_, i) => (i * 37 + 11) & 0xff));
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, garbage, 0, pageSize, (rootpage - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

describe.each(DIALECTS)("%s: health", (dialect) => {
  it("reports a migrated database healthy with latency, version and migrations", async () => {
    const db = await freshDatabase(dialect);
    await cli(["migrate", "--db", db]);
    const result = await cli(["health", "--db", db, "--samples", "7", "--json"]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    const report = result.json!;
    expect(report).toMatchObject({ ok: true, healthy: true, dialect, samples: 7, migrations: { applied: ALL_MIGRATIONS.length, pending: 0 } });
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

  it("plain health says integrity was not checked; --deep checks it and says how", async () => {
    const db = await freshDatabase(dialect);
    await cli(["migrate", "--db", db]);
    const plain = await cli(["health", "--db", db, "--json"]);
    expect(plain.json?.integrity).toEqual({ checked: false, ok: null, method: null, detail: "not checked (use --deep)" });
    const deep = await cli(["health", "--deep", "--db", db, "--json"]);
    expect(deep.code).toBe(0);
    if (dialect === "sqlite") {
      expect(deep.json?.integrity).toEqual({ checked: true, ok: true, method: "pragma quick_check", detail: "ok" });
      return;
    }
    // what PostgreSQL can tell cheaply depends on whether the server keeps data checksums
    const checksums = await withDatabase(db, async (pg) => (await pg.all<{ on: string }>(sql`SELECT current_setting('data_checksums') AS on`))[0]?.on);
    expect(deep.json?.integrity).toEqual(
      checksums === "on"
        ? { checked: true, ok: true, method: "data checksum failures (pg_stat_database)", detail: "ok" }
        : { checked: false, ok: null, method: null, detail: expect.stringMatching(/^not checked: data checksums are off on this server/) },
    );
  });

  if (dialect === "sqlite") {
    it("a file with damaged pages: plain health does not vouch for it, --deep fails it (exit 1) with a hint", async () => {
      const db = await freshDatabase(dialect);
      expect((await cli(["seed", "--local", "--db", db, "--users", "8", "--briefs", "20", "--reviews", "30", "--transactions", "60"])).code).toBe(0);
      damageTablePage(db.slice("file:".length), "briefs");

      const plain = await cli(["health", "--db", db, "--json"]);
      expect(plain.json).toMatchObject({ healthy: true, integrity: { checked: false, detail: "not checked (use --deep)" } });
      const human = await cli(["health", "--db", db]);
      expect(human.stdout).toMatch(/integrity\s+not checked \(use --deep\)/);

      const deep = await cli(["health", "--deep", "--db", db, "--json"]);
      expect(deep.code).toBe(1);
      expect(deep.json).toMatchObject({
        ok: false,
        healthy: false,
        integrity: { checked: true, ok: false, method: "pragma quick_check" },
        error: { code: "DB_ERROR", message: expect.stringMatching(/^the stored data is damaged: .*malformed/), hint: expect.stringMatching(/backup/) },
      });
      const deepHuman = await cli(["health", "--deep", "--db", db]);
      expect(deepHuman.code).toBe(1);
      expect(deepHuman.stdout).toMatch(/integrity\s+1 problem\(s\) found \(pragma quick_check\)/);
      expect(deepHuman.stderr).toMatch(/^error: the stored data is damaged: .* \(hint: .*backup.*\)\n$/);
    });
  }

  if (dialect === "sqlite") {
    it.each([
      ["is not SQLite at all", "hello, I am a text file, not a database\n".repeat(200), /not a SQLite database, or its header is damaged/],
      ["has a damaged header", "SQLite format 3\0" + "\xff".repeat(4000), /damaged|not a SQLite database/],
    ])("a file that %s: DB_ERROR with a hint, not 'cannot reach' (health, --deep, a deduct)", async (_what, content, hint) => {
      const path = (await freshDatabase(dialect)).slice("file:".length);
      const fd = openSync(path, "w");
      writeSync(fd, Buffer.from(content, "latin1"));
      closeSync(fd);
      for (const args of [["health"], ["health", "--deep"], ["tokens", "deduct", "u", "1"]]) {
        const result = await cli([...args, "--db", path, "--json"]);
        expect(result.code).toBe(1);
        expect(result.json).toMatchObject({ ok: false, error: { code: "DB_ERROR", hint: expect.stringMatching(hint) } });
      }
    });
  }

  it("prints people a readable report", async () => {
    const db = await freshDatabase(dialect);
    await cli(["migrate", "--db", db]);
    const result = await cli(["health", "--db", db]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/status\s+healthy/);
    expect(result.stdout).toMatch(new RegExp(`migrations\\s+${ALL_MIGRATIONS.length} applied, 0 pending`));
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

  it("a wrong password is AUTH_FAILED (not \"cannot reach\") and never printed", async () => {
    const db = new URL(await freshDatabase("postgresql"));
    db.password = "not-the-password";
    const result = await cli(["health", "--db", db.toString()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: cannot sign in to .*password authentication failed.*check the user and password/);
    expect(result.stdout + result.stderr).not.toContain("not-the-password");
  });
});

describe("health of an in-memory database", () => {
  it("pending migrations on :memory: do not advise `briefdb migrate`, which could never reach it", async () => {
    const result = await cli(["health", "--db", ":memory:", "--json"]);
    expect(result.code).toBe(1);
    expect(result.json?.error).toMatchObject({ code: "NOT_MIGRATED" });
    expect(result.json?.error.hint).toMatch(/in-memory database starts empty in every process/);
    expect(result.json?.error.hint).not.toMatch(/briefdb migrate/);
  });
});
