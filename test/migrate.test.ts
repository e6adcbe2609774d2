import { existsSync } from "node:fs";
import Sqlite from "better-sqlite3";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../src/index.js";
import { ALL_MIGRATIONS as ALL, cli, DIALECTS, freshDatabase, spawnCli } from "./support/databases.js";

describe.each(DIALECTS)("%s: migrate", (dialect) => {
  it("applies the pending migrations once, then has nothing pending", async () => {
    const db = await freshDatabase(dialect);
    const first = await cli(["migrate", "--db", db, "--json"]);
    expect(first.code).toBe(0);
    expect(first.json).toMatchObject({ ok: true, applied: ALL, alreadyApplied: 0, dryRun: false });

    const second = await cli(["migrate", "--db", db, "--json"]);
    expect(second.json).toMatchObject({ ok: true, applied: [], alreadyApplied: ALL.length });

    const status = await cli(["migrate", "--status", "--db", db, "--json"]);
    expect(status.code).toBe(0);
    expect(status.json?.pending).toEqual([]);
    expect(status.json?.applied.map((m: { tag: string }) => m.tag)).toEqual(ALL);
  });

  it("--dry-run prints the SQL it would run and changes nothing", async () => {
    const fresh = await freshDatabase(dialect);
    const dry = await cli(["migrate", "--dry-run", "--db", fresh]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/CREATE TABLE [`"]users[`"]/);
    expect(dry.stdout).toContain("CREATE INDEX");
    expect(dry.stdout).toContain(`${ALL.length} migration(s) would run`);
    // the SQL as it will run, pastable: the files' tabs stay tabs (a "\t" would not parse)
    expect(dry.stdout).toMatch(/\t[`"]id[`"] text PRIMARY KEY NOT NULL/);
    expect(dry.stdout).not.toContain("\\t");
    const status = await cli(["migrate", "--status", "--db", fresh, "--json"]);
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ ok: false, error: { code: "NOT_MIGRATED" }, pending: ALL });
    // a read-only look never creates the SQLite file it is pointed at
    if (dialect === "sqlite") expect(existsSync(fresh.slice("file:".length))).toBe(false);
  });

  it("--status is a CI gate: exit 1 while a migration is pending", async () => {
    const db = await freshDatabase(dialect);
    const before = await cli(["migrate", "--status", "--db", db]);
    expect(before.code).toBe(1);
    await cli(["migrate", "--db", db]);
    const after = await cli(["migrate", "--status", "--db", db]);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain(`${ALL.length} applied, 0 pending`);
  });

  it("--status flags an applied migration whose file no longer matches (exit 1)", async () => {
    const url = await freshDatabase(dialect);
    await cli(["migrate", "--db", url]);
    const db = await openDatabase(url);
    await db.run(sql`UPDATE briefdb_migrations SET hash = ${"edited"} WHERE tag = ${"0000_init"}`);
    await db.close();
    const status = await cli(["migrate", "--status", "--db", url, "--json"]);
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ ok: false, pending: [], applied: ALL.map((tag) => ({ tag, changed: tag === "0000_init" })) });
    expect(status.stderr).toMatch(/^error: applied migration\(s\) 0000_init differ from their files on disk/);
    const health = await cli(["health", "--db", url, "--json"]);
    expect(health.code).toBe(1);
    expect(health.json?.problems).toEqual(["applied migration(s) 0000_init differ from their files"]);
  });

  it("two migrate processes at once both succeed and apply the schema once", async () => {
    const db = await freshDatabase(dialect);
    const runs = [0, 1, 2].map(() => {
      const child = spawnCli(["migrate", "--db", db, "--json"]);
      let stdout = "";
      child.stdout.on("data", (chunk) => (stdout += chunk));
      return new Promise<{ code: number | null; stdout: string }>((resolve) =>
        child.on("close", (code) => resolve({ code, stdout })),
      );
    });
    const results = await Promise.all(runs);
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    const applied = results.map((r) => JSON.parse(r.stdout).applied as string[]);
    expect(applied.flat()).toEqual(ALL);
    const status = await cli(["migrate", "--status", "--db", db, "--json"]);
    expect(status.json?.applied).toHaveLength(ALL.length);
  });

  // briefdb's tables live in public (the migrations' foreign keys name it), whatever the search_path
  it.runIf(dialect === "postgresql").each([
    ["an empty schema first in the path (other, public), on a fresh database", "CREATE SCHEMA other", "other, public", false],
    ["a schema that needs quoting first in the path (\"Side App\", public), on a migrated database", 'CREATE SCHEMA "Side App"', '"Side App", public', true],
  ] as const)("%s: migrate applies each migration once, into public, and the commands find them", async (_, create, path, migratedFirst) => {
    const url = await freshDatabase(dialect);
    if (migratedFirst) expect((await cli(["migrate", "--db", url])).code).toBe(0);
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`${create}; ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET search_path = ${path}`);
      for (const run of [1, 2]) {
        const result = await cli(["migrate", "--db", url, "--json"]);
        expect({ run, code: result.code, json: result.json }).toMatchObject({
          run,
          code: 0,
          json: { ok: true, applied: migratedFirst || run === 2 ? [] : ALL, alreadyApplied: migratedFirst || run === 2 ? ALL.length : 0 },
        });
      }
      const offline = await cli(["migrate", "--offline", "--db", url, "--json"]);
      expect(offline.json).toMatchObject({ ok: true, applied: [] });
      expect((await cli(["migrate", "--status", "--db", url, "--json"])).json).toMatchObject({ ok: true, pending: [] });
      expect((await cli(["health", "--db", url, "--json"])).code).toBe(0);
      const placed = await admin<{ schema: string }[]>`SELECT DISTINCT table_schema AS schema FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`;
      expect(placed.map((row) => row.schema)).toEqual(["public"]);
    } finally {
      await admin.end();
    }
  });

  it.runIf(dialect === "postgresql")("--offline on a fresh database whose path starts with an empty schema applies into public", async () => {
    const url = await freshDatabase(dialect);
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`CREATE SCHEMA other; ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET search_path = other, public`);
      expect((await cli(["migrate", "--offline", "--db", url, "--json"])).json).toMatchObject({ ok: true, applied: ALL });
      expect((await cli(["migrate", "--db", url, "--json"])).json).toMatchObject({ ok: true, applied: [] });
      const placed = await admin<{ schema: string }[]>`SELECT DISTINCT table_schema AS schema FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`;
      expect(placed.map((row) => row.schema)).toEqual(["public"]);
    } finally {
      await admin.end();
    }
  });

  if (dialect === "sqlite") {
    // The cause of that test's rare [1, 0, 0]: the process that switches a new file to WAL holds its
    // write lock for a moment, and another process switching it too failed at once ("database is
    // locked") instead of waiting. Here the moment is made long: a connection holds the write lock.
    it("migrate waits for another process that holds a new file's write lock instead of failing at once", async () => {
      const db = await freshDatabase(dialect);
      const holder = new Sqlite(db.slice("file:".length));
      holder.exec("BEGIN IMMEDIATE");
      const child = spawnCli(["migrate", "--db", db, "--json"]);
      let stdout = "";
      child.stdout.on("data", (chunk) => (stdout += chunk));
      const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
      const release = setTimeout(() => {
        holder.exec("COMMIT");
        holder.close();
      }, 1500);
      const code = await exited;
      clearTimeout(release);
      if (holder.open) holder.close();
      expect({ code, applied: JSON.parse(stdout || "{}").applied }).toEqual({ code: 0, applied: ALL });
    });
  }
});
