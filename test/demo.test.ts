import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { tableCounts } from "./support/tables.js";

const DEMO = resolve(import.meta.dirname, "../scripts/demo.mjs");

function runDemo(cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", DATABASE_URL: "postgres://u:pw@db.example.invalid/x", ...env };
    if (!("NODE_ENV" in env)) delete childEnv.NODE_ENV;
    execFile(process.execPath, [DEMO], { cwd, env: childEnv, timeout: 60_000 }, (error, stdout, stderr) =>
      done({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

describe("npm run demo", () => {
  it("migrates, seeds and checks ./briefdb.db in the current folder, whatever DATABASE_URL says", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "briefdb-demo-"));
    const run = await runDemo(cwd);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /1\/11 Apply the schema[\s\S]*2\/11 Seed test data[\s\S]*3\/11 Check health[\s\S]*status\s+healthy[\s\S]*4\/11 Deduct tokens[\s\S]*deducted\s+25[\s\S]*5\/11 Hold tokens for an AI generation[\s\S]*hold\s+hold_[0-9a-f-]{36}[\s\S]*held\s+40[\s\S]*6\/11 Capture the actual cost[\s\S]*\$ briefdb tokens capture hold_[0-9a-f-]{36} 31[\s\S]*charged\s+31 of 40[\s\S]*released\s+9[\s\S]*7\/11 Read the ledger[\s\S]*8\/11 Race 1,000 deductions[\s\S]*500 succeeded, 500 refused[\s\S]*9\/11 Race the app's own endpoint[\s\S]*50 succeeded \(2xx\), 50 refused \(4xx\), 0 errors[\s\S]*10\/11 Reconcile every balance[\s\S]*all 100 balances equal[\s\S]*11\/11 Probe the canonical queries[\s\S]*demo done in/,
    );
    expect(await tableCounts(`file:${join(cwd, "briefdb.db")}`)).toMatchObject({ users: 100, briefs: 1000, token_transactions: 5053 }); // the seed, the demo deduct and capture, seed-user-2's opening-balance row and its 50 raced deducts
  });

  it("stops at the first step that fails, with its exit code", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "briefdb-demo-"));
    const run = await runDemo(cwd, { NODE_ENV: "production" });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("error: seed runs on local databases only");
    expect(run.stderr).toContain('demo stopped: "Seed test data" failed');
    expect(run.stdout).not.toContain("Check health");
    expect(existsSync(join(cwd, "briefdb.db"))).toBe(true);
  });
});
