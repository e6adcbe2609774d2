/**
 * `race-test --report` and `slow-queries --report` through the built CLI on both dialects: one
 * self-contained HTML file (no script, nothing fetched) with the latency histogram and its marks,
 * the figures, the command line with its secrets redacted, every stored string escaped. Opening
 * them in a browser: dashboard-browser.test.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, type TestContext } from "./support/setup.js";
import { TEST_PG_PASSWORD } from "./support/global-setup.js";

const HOSTILE = "<img src=x onerror=alert(1)>";

/** The data-count of every bar of the file's histograms, summed. */
function barTotal(html: string): number {
  return [...html.matchAll(/<rect class="bar"[^>]*data-count="(\d+)"/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe.each(DIALECTS)("%s: HTML reports", (dialect) => {
  let t: TestContext;
  let dir: string;
  beforeAll(async () => {
    t = await initTest(dialect);
    dir = mkdtempSync(join(tmpdir(), "briefdb-report-"));
  });
  afterAll(() => destroyTest(t?.db));

  it("race-test --report writes the histogram with p50/p95/p99, the outcome, the invariants and the redacted command line", async () => {
    const file = join(dir, "race.html");
    const result = await cli(["race-test", "--db", t.url, "--n", "60", "--concurrency", "4", "--report", file, "--json"]);
    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({ ok: true, report: file, n: 60 });
    const html = readFileSync(file, "utf8");
    expect(barTotal(html)).toBe(60);
    for (const p of ["p50", "p95", "p99"]) expect(html).toMatch(new RegExp(`class="marklabel m\\d"[^>]*>${p} `));
    for (const invariant of result.json!.invariants) expect(html).toContain(invariant.detail);
    expect(html).toContain(`<tr><td>succeeded</td><td class="num">${result.json!.successes}</td></tr>`);
    expect(html).toContain("$ briefdb race-test --db ");
    expect(html).toContain(t.db.target.display.replace(/&/g, "&amp;"));
    expect(html).not.toContain(TEST_PG_PASSWORD);
    expect(html).not.toMatch(/<script|<link|src=|href=/);
  });

  it("slow-queries --report: a histogram per query name, every stored name escaped; the terminal table has its spread", async () => {
    const now = Date.now();
    for (const [name, ms] of [[HOSTILE, 700], ["feed", 600], ["feed", 1800], ["feed", 6000], ["invoice-\u202Eexe.fdp", 650]] as const) {
      await t.db.run(sql`INSERT INTO query_log (name, duration_ms, failed, recorded_at) VALUES (${name}, ${ms}, FALSE, ${t.db.time.fromEpochMs(now)})`);
    }
    const file = join(dir, "slow.html");
    const result = await cli(["slow-queries", "--db", t.url, "--report", file, "--json"]);
    expect(result.code).toBe(0);
    const feed = result.json!.recorded.find((r: { name: string }) => r.name === "feed");
    expect(feed.latencyHistogram).toEqual([
      { leMs: 1000, count: 1 },
      { leMs: 2500, count: 1 },
      { leMs: 10000, count: 1 },
    ]);
    const html = readFileSync(file, "utf8");
    expect(barTotal(html)).toBe(5);
    expect(html).not.toContain("\u202E"); // shown as its escape, not left to reorder the text
    expect(html).toContain("invoice-\\u202eexe.fdp");
    expect(html).not.toContain(HOSTILE);
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(html).not.toMatch(/<script|<img/);
    const human = await cli(["slow-queries", "--db", t.url]);
    expect(human.stdout).toMatch(/feed\s+│.*│ ≤1000 ███ ≤10000\s+│/);
  });

  it("--report into a folder that does not exist is exit 2 before anything connects", async () => {
    const missing = join(dir, "no-such-folder", "r.html");
    for (const command of [["race-test", "--allow-remote"], ["slow-queries"]]) {
      const result = await cli([...command, "--db", "postgres://me:pw@db.example.invalid/briefs", "--report", missing, "--json"]);
      expect(result.code).toBe(2);
      expect(result.json?.error).toMatchObject({ code: "USAGE", message: expect.stringMatching(/^--report cannot write .*: ENOENT$/) });
    }
  });
});

describe("the report's command line and path", () => {
  it("hides tokens, header values, passwords and every query value, in both option forms; a body stays as written", async () => {
    const { redactedCommandLine } = await import("../src/commands/report.js");
    const line = redactedCommandLine([
      "race-test",
      "--url",
      "http://127.0.0.1:3000/deduct?token=SECRETQ&api_key=K2&n={{i}}",
      "--header=Authorization: Bearer SECRETH",
      "--header",
      "Cookie: session=SECRETC",
      "--db",
      "postgres://u:PW1@127.0.0.1/x?sslpassword=SSLPW&password=PW2",
      "--body",
      '{"apiKey":"{{amount}}"}',
      "--token=SECRETT",
    ]);
    for (const secret of ["SECRETQ", "K2", "SECRETH", "SECRETC", "PW1", "SSLPW", "PW2", "SECRETT"]) expect(line).not.toContain(secret);
    expect(line).toContain("n={{i}}");
    expect(line).toContain(`'{"apiKey":"{{amount}}"}'`);
  });

  it("a FIFO (or any file that is not a regular one) is refused before anything runs: a write to it would block for ever", async () => {
    const dir = mkdtempSync(join(tmpdir(), "briefdb-report-"));
    execFileSync("mkfifo", [join(dir, "fifo.html")]);
    const run = await cli(["race-test", "--n", "2", "--db", `file:${join(dir, "r.db")}`, "--report", join(dir, "fifo.html")]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--report cannot write .*not a regular file/);
  });
});
