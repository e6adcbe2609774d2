import { existsSync } from "node:fs";
import Sqlite from "better-sqlite3";
import { sql } from "drizzle-orm";
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
