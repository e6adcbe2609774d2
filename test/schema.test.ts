import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");

describe.each([
  ["sqlite", "src/db/sqlite/schema.ts", "drizzle/sqlite"],
  ["postgresql", "src/db/pg/schema.ts", "drizzle/pg"],
])("%s: schema and committed migrations", (dialect, schema, folder) => {
  it("agree: drizzle-kit generates nothing new from the schema", () => {
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
