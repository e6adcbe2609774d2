import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const { DIALECT_FILES, drizzleConfig } = await import("../drizzle.config.js");

describe.each(["sqlite", "postgresql"] as const)("%s: schema and committed migrations", (dialect) => {
  it("agree: drizzle-kit generates nothing new from the schema", () => {
    const { schema, out: folder } = DIALECT_FILES[dialect];
    const out = mkdtempSync(join(tmpdir(), "briefdb-drift-"));
    cpSync(join(ROOT, folder), out, { recursive: true });
    const before = readdirSync(out).sort();
    const run = spawnSync(
      join(ROOT, "node_modules/.bin/drizzle-kit"),
      // drizzle-kit reads --out relative to the working directory
      ["generate", "--dialect", dialect, "--schema", schema, "--out", relative(ROOT, out)],
      { cwd: ROOT, encoding: "utf8" },
    );
    const output = `${run.stdout}${run.stderr}`;
    expect(run.status, output).toBe(0);
    expect(readdirSync(out).sort(), output).toEqual(before);
    expect(output).toMatch(/No schema changes/);
  });
});

describe("drizzle.config.ts", () => {
  it("picks the dialect from DATABASE_URL, SQLite's default file when it is unset", () => {
    expect(drizzleConfig({})).toMatchObject({
      dialect: "sqlite",
      ...DIALECT_FILES.sqlite,
      dbCredentials: { url: resolve("briefdb.db") },
    });
    expect(drizzleConfig({ DATABASE_URL: "file:/tmp/x.db" })).toMatchObject({ dialect: "sqlite", dbCredentials: { url: "/tmp/x.db" } });
    const url = "postgres://me:pw@localhost:6543/briefs";
    expect(drizzleConfig({ DATABASE_URL: url })).toMatchObject({ dialect: "postgresql", ...DIALECT_FILES.postgresql, dbCredentials: { url } });
  });

  it("BRIEFDB_DIALECT wins; credentials only for a URL of that dialect", () => {
    const pg = drizzleConfig({ BRIEFDB_DIALECT: "postgresql" });
    expect(pg).toMatchObject({ dialect: "postgresql", ...DIALECT_FILES.postgresql });
    expect(pg).not.toHaveProperty("dbCredentials");
    const sqlite = drizzleConfig({ BRIEFDB_DIALECT: "sqlite", DATABASE_URL: "postgres://localhost/briefs" });
    expect(sqlite).toMatchObject({ dialect: "sqlite", ...DIALECT_FILES.sqlite });
    expect(sqlite).not.toHaveProperty("dbCredentials");
    expect(() => drizzleConfig({ BRIEFDB_DIALECT: "mysql" })).toThrow(/BRIEFDB_DIALECT must be one of sqlite, postgresql/);
  });
});
