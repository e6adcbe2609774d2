import { describe, expect, it } from "vitest";
import { openDatabase } from "../src/index.js";
import { cli, DIALECTS, freshDatabase } from "./support/databases.js";

describe.each(DIALECTS)("%s: race-test", (dialect) => {
  const migrated = async () => {
    const url = await freshDatabase(dialect);
    await cli(["migrate", "--db", url]);
    return url;
  };

  it.each([10, 1000])("atomic deductions hold every invariant under %i parallel deductions", async (n) => {
    const url = await migrated();
    const result = await cli(["race-test", "--n", String(n), "--concurrency", "8", "--db", url, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const report = result.json!;
    expect(report).toMatchObject({
      ok: true,
      n,
      successes: n / 2,
      rejected: n / 2,
      errors: 0,
      initialBalance: n / 2,
      finalBalance: 0,
    });
    expect(report.invariants).toHaveLength(4);
    expect(report.invariants.every((i: { ok: boolean }) => i.ok)).toBe(true);
    expect(report.throughputPerSec).toBeGreaterThan(0);
    expect(report.latencyMs.p50).toBeLessThanOrEqual(report.latencyMs.p95);
    expect(report.latencyMs.p95).toBeLessThanOrEqual(report.latencyMs.p99);
    // the histogram counts every deduction once, in ascending buckets, none empty at either end
    const buckets = report.latencyHistogram as Array<{ leMs: number | null; count: number }>;
    expect(buckets.reduce((sum, b) => sum + b.count, 0)).toBe(n);
    expect(buckets[0]!.count).toBeGreaterThan(0);
    expect(buckets[buckets.length - 1]!.count).toBeGreaterThan(0);
    const bounds = buckets.map((b) => b.leMs ?? Number.POSITIVE_INFINITY);
    expect([...bounds].sort((a, b) => a - b)).toEqual(bounds);
    const verify = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(verify.json).toMatchObject({ ok: true, checked: 0 }); // the throw-away user is gone
  });

  it("the human report draws the latency histogram: one line a bucket, the counts adding up to n", async () => {
    const url = await migrated();
    const result = await cli(["race-test", "--n", "200", "--db", url]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("latency histogram (count per bucket)");
    const counts = [...result.stdout.matchAll(/^ {2}[≤>] [\d.]+ ms +█* ?(\d+)$/gm)].map((m) => Number(m[1]));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(200);
  });

  it("the naive read-check-write strategy is caught: exit 1, INVARIANT_VIOLATED", async () => {
    const url = await migrated();
    const result = await cli(["race-test", "--n", "400", "--concurrency", "8", "--strategy", "naive", "--db", url, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ ok: false, strategy: "naive", error: { code: "INVARIANT_VIOLATED" } });
    const broken = result.json!.invariants.filter((i: { ok: boolean }) => !i.ok);
    expect(broken.length).toBeGreaterThan(0);
    expect(result.stderr).toMatch(/^error: race-test \(naive\): \d invariant\(s\) broken/);
  });

  it("--mode holds: holds, captures, releases, expiries and deducts at once hold every invariant", async () => {
    const url = await migrated();
    const result = await cli(["race-test", "--mode", "holds", "--n", "600", "--concurrency", "8", "--db", url, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const report = result.json!;
    expect(report).toMatchObject({ ok: true, mode: "holds", strategy: "atomic", n: 600, errors: 0, initialBalance: 300 });
    expect(report.invariants).toHaveLength(6);
    expect(report.invariants.every((i: { ok: boolean }) => i.ok)).toBe(true);
    for (const operation of ["hold", "capture", "release", "deduct"]) expect(report.operations[operation]?.ok).toBeGreaterThan(0);
    // the pre-placed holds expire during the race: each is captured, released or lapses, never lost
    expect(report.operations.expiry).toBeDefined();
    expect(report.finalBalance).toBeGreaterThanOrEqual(0);
    const verify = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(verify.json).toMatchObject({ ok: true, checked: 0, holdViolations: [] });
  });

  it("--mode holds --strategy naive (check available, then write) is caught: exit 1, INVARIANT_VIOLATED", async () => {
    const url = await migrated();
    const result = await cli(["race-test", "--mode", "holds", "--n", "400", "--concurrency", "8", "--strategy", "naive", "--db", url, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ ok: false, mode: "holds", strategy: "naive", error: { code: "INVARIANT_VIOLATED" } });
    expect(result.json!.invariants.filter((i: { ok: boolean }) => !i.ok).length).toBeGreaterThan(0);
    expect(result.stderr).toMatch(/^error: race-test \(holds, naive\): \d invariant\(s\) broken/);
  });

  it("--amount, --balance and --keep: the kept user's ledger is exact", async () => {
    const url = await migrated();
    const result = await cli(["race-test", "--n", "50", "--amount", "3", "--balance", "100", "--keep", "--db", url, "--json"]);
    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({ successes: 33, rejected: 17, initialBalance: 100, finalBalance: 1, kept: true });
    const history = await cli(["tokens", "history", result.json!.userId, "--limit", "1000", "--db", url, "--json"]);
    expect(history.json?.entries).toHaveLength(34);
    const verify = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(verify.json).toMatchObject({ ok: true, checked: 1 });
  });

  it("--no-batch reaches the racers' databases: they apply each deduction on its own, every invariant holds", async () => {
    const url = await migrated();
    const batched = await cli(["race-test", "--n", "40", "--concurrency", "4", "--db", url, "--json"]);
    const unbatched = await cli(["--no-batch", "race-test", "--n", "40", "--concurrency", "4", "--db", url, "--json"]);
    expect(batched.code, batched.stderr).toBe(0);
    expect(unbatched.code, unbatched.stderr).toBe(0);
    expect(batched.json).toMatchObject({ ok: true, batched: true, successes: 20, rejected: 20, errors: 0 });
    expect(unbatched.json).toMatchObject({ ok: true, batched: false, successes: 20, rejected: 20, errors: 0 });
  });

  it("an unmigrated database is exit 1 NOT_MIGRATED with the hint", async () => {
    const url = await freshDatabase(dialect);
    await (await openDatabase(url)).close(); // an existing, empty database
    const result = await cli(["race-test", "--n", "5", "--db", url, "--json"]);
    expect(result.code).toBe(1);
    expect(result.json?.error.code).toBe("NOT_MIGRATED");
    expect(result.stderr).toMatch(/hint: run `briefdb migrate/);
  });
});

describe("race-test refusals", () => {
  it("a remote target is refused before connecting: exit 3 NOT_LOCAL, redacted", async () => {
    const result = await cli(["race-test", "--db", "postgres://app:remotesecret@db.example.invalid:5432/briefs", "--json"]);
    expect(result.code).toBe(3);
    expect(result.json?.error.code).toBe("NOT_LOCAL");
    expect(result.json?.error.message).toContain("postgres://app:***@db.example.invalid:5432/briefs");
    expect(result.stdout + result.stderr).not.toContain("remotesecret");
  });

  it("nothing is local while NODE_ENV=production", async () => {
    const url = await freshDatabase("sqlite");
    const result = await cli(["race-test", "--db", url, "--json"], { env: { NODE_ENV: "production" } });
    expect(result.code).toBe(3);
    expect(result.json?.error.message).toMatch(/NODE_ENV=production/);
  });

  it.each([
    [["--n", "0"]],
    [["--n", "ten"]],
    [["--strategy", "optimistic"]],
    [["--mode", "captures"]],
    [["--amount", "-1"]],
    [["--concurrency", "0"]],
  ])("bad options %j are exit 2", async (args) => {
    const result = await cli(["race-test", ...args, "--db", "file:/nonexistent/x.db", "--json"]);
    expect(result.code).toBe(2);
    expect(["USAGE", "INVALID_AMOUNT"]).toContain(result.json?.error.code);
  });
});
