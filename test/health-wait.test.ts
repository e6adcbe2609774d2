import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, openDatabase, type BriefDatabase } from "../src/index.js";
import { fillListingData } from "../harness/bulk-data.mjs";
import { cli, DIALECTS, freshDatabase, spawnCli } from "./support/databases.js";
import { destroyTest, initTest } from "./support/setup.js";

/** Runs the CLI, resolving once stderr shows `line`; then `finish` resolves with its exit and output. */
function runUntilLine(args: readonly string[], line: RegExp) {
  const child = spawnCli(args);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += String(chunk)));
  const finish = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("exit", (code) => resolve({ code, stdout, stderr })),
  );
  const seen = new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (chunk) => {
      stderr += String(chunk);
      if (line.test(stderr)) resolve();
    });
    void finish.then(() => reject(new Error(`exited before ${line}: ${stderr}`)));
  });
  return { seen, finish, child: Promise.resolve(child) };
}

describe.each(DIALECTS)("%s: health --wait", (dialect) => {
  it("waits while migrations are pending, one line per state change, then exit 0 once migrated", async () => {
    const url = await freshDatabase(dialect);
    await (await openDatabase(url)).close(); // exists, but empty
    const run = runUntilLine(["health", "--wait", "60s", "--db", url, "--json"], /health: unhealthy: \d+ migration\(s\) pending/);
    await run.seen;
    const db = await openDatabase(url);
    await migrate(db);
    await db.close();
    const result = await run.finish;
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/^health: unhealthy: \d+ migration\(s\) pending/);
    expect(lines.at(-1)).toBe("health: healthy");
    expect(new Set(lines).size).toBe(lines.length); // a line per change, not per attempt
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, healthy: true, attempts: expect.any(Number) });
  });

  it("gives up at the deadline with the last state's exit code", async () => {
    const url = await freshDatabase(dialect);
    await (await openDatabase(url)).close();
    const result = await cli(["health", "--wait", "1s", "--db", url, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ ok: false, healthy: false, error: { code: "NOT_MIGRATED" } });
  });
});

describe.each(DIALECTS)("%s: health --wait interrupted", (dialect) => {
  it.each(["SIGINT", "SIGTERM"] as const)("%s while waiting: exit 130 (SIGINT) or 143 (SIGTERM), CANCELLED naming the last state, one JSON object", async (signal) => {
    const url = dialect === "sqlite" ? `file:${join(mkdtempSync(join(tmpdir(), "briefdb-wait-")), "later.db")}` : "postgres://nobody@127.0.0.1:1/none";
    const run = runUntilLine(["--db", url, "--timeout", "1000", "health", "--wait", "10m", "--json"], /health: unreachable/);
    await run.seen;
    (await run.child).kill(signal);
    const result = await run.finish;
    expect(result.code).toBe(signal === "SIGINT" ? 130 : 143);
    const json = JSON.parse(result.stdout) as { ok: boolean; error: { code: string; message: string } };
    expect(json).toMatchObject({ ok: false, error: { code: "CANCELLED" } });
    expect(json.error.message).toMatch(/^health --wait interrupted; last state: unreachable/);
  });
});

describe("health --wait on a SQLite file that does not exist yet", () => {
  it("reports it unreachable, then healthy once it is made and migrated", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "briefdb-wait-")), "later.db");
    const run = runUntilLine(["health", "--wait", "60s", "--db", `file:${path}`], /health: unreachable/);
    await run.seen;
    const db = await openDatabase(`file:${path}`);
    await migrate(db);
    await db.close();
    const result = await run.finish;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr.trim().split("\n").at(-1)).toBe("health: healthy");
    expect(result.stdout).toMatch(/status\s+healthy/);
  });

  it.each(["soon", "0s", "2h", "-5s"])("--wait %s is exit 2", async (value) => {
    const result = await cli(["health", "--wait", value, "--db", "file:/nonexistent/x.db", "--json"]);
    expect(result.code).toBe(2);
    expect(result.json?.error.code).toBe("USAGE");
  });
});

describe.each(DIALECTS)("%s: slow-queries --probe gates", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
    await fillListingData(db, { users: 500, briefs: 5000, reviews: 5000, transactions: 5000 });
    await db.exec("ANALYZE");
  });
  afterAll(() => destroyTest(db));

  it("a p95 budget nothing can meet fails the gate: exit 1 GATE_FAILED naming every probe", async () => {
    const result = await cli(["slow-queries", "--probe", "--runs", "2", "--max-p95", "0.000001", "--db", url, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ ok: false, error: { code: "GATE_FAILED" }, gates: { maxP95Ms: 0.000001, requireIndex: false } });
    expect(result.json!.gates.failures).toHaveLength(result.json!.probes.length);
    expect(result.stderr).toMatch(/^error: slow-queries: 6 gate\(s\) failed: publishedBriefsByViews p95 [\d.]+ ms over the 0.000001 ms budget/);
  });

  it("a budget always met, with every probe on an index, passes: exit 0", async () => {
    const result = await cli(["slow-queries", "--probe", "--runs", "2", "--max-p95", "60000", "--require-index", "--db", url, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({ ok: true, gates: { maxP95Ms: 60000, requireIndex: true, failures: [] } });
    const human = await cli(["slow-queries", "--probe", "--runs", "1", "--require-index", "--db", url]);
    expect(human.stdout).toContain("gates passed");
  });

  it("--require-index fails when a canonical query reads a table whole", async () => {
    await db.exec("DROP INDEX reviews_brief_id_created_at_idx; DROP INDEX reviews_brief_id_idx; DROP INDEX reviews_created_at_idx");
    const result = await cli(["slow-queries", "--probe", "--runs", "1", "--require-index", "--db", url, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json?.gates.failures).toEqual([
      {
        probe: "briefReviews",
        gate: "require-index",
        detail: "reads reviews whole; fix: CREATE INDEX reviews_brief_id_created_at_idx ON reviews (brief_id, created_at)",
      },
    ]);
  });

  it.each([
    [["--max-p95", "5"], /^error: --max-p95 and --require-index go with --probe$/],
    [["--require-index"], /^error: --max-p95 and --require-index go with --probe$/],
    [["--probe", "--max-p95", "0"], /^error: --max-p95 takes a positive number of milliseconds, not "0"$/],
    [["--probe", "--max-p95", "fast"], /^error: --max-p95 takes a positive number of milliseconds, not "fast"$/],
  ])("%j is exit 2", async (args, message) => {
    const result = await cli(["slow-queries", ...args, "--db", url]);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd()).toMatch(message);
  });
});
