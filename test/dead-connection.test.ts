/**
 * A PostgreSQL backend that dies under a driver transaction or a reserved connection must neither
 * take the app's process down nor let the dead transaction's statements run later (postgres.js
 * 3.4.x: porsager/postgres#1208, #1216). Each case runs an app on the built library in a child
 * process (test/support/dead-connection-app.mjs), so that a crash is a dead process.
 */
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { cli, freshDatabase } from "./support/databases.js";

const APP = resolve(import.meta.dirname, "support/dead-connection-app.mjs");

async function migratedDatabase(): Promise<string> {
  const url = await freshDatabase("postgresql");
  expect((await cli(["migrate", "--db", url])).code).toBe(0);
  return url;
}

function runApp(scenario: string, url: string): Promise<{ code: number; stdout: string; stderr: string; json: any }> {
  return new Promise((done, fail) => {
    execFile(process.execPath, [APP, scenario, url], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return fail(error);
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      done({ code: error ? Number(error.code) : 0, stdout, stderr, json });
    });
  });
}

describe("postgresql: a backend that dies under a transaction or a reserved connection", () => {
  it.each([
    ["terminated-idle", "terminated (pg_terminate_backend) while the operation waits"],
    ["terminated-idle-reconnected", "terminated, and the pool's one connection brought back by another query before the operation goes on"],
    ["idle-timeout", "ended by idle_in_transaction_session_timeout"],
    ["idle-timeout-reconnected", "ended by idle_in_transaction_session_timeout, the connection brought back by another query"],
  ])("withTransaction, its backend %s: the process lives, the operation's next statement is refused, nothing of it applied", async (scenario) => {
    const run = await runApp(scenario, await migratedDatabase());
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.json).toMatchObject({ transaction: "DB_UNREACHABLE", balance: 100, ledgerRows: 1 });
    expect(run.json.deduct).not.toBe("ok");
  });

  it("withTransaction ended by idle_in_transaction_session_timeout while the app's loop was busy: DB_UNREACHABLE, and the next call, handed the same FATAL by postgres.js, is a lost connection too, not DB_ERROR", async () => {
    const run = await runApp("idle-timeout-unread", await migratedDatabase());
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.json).toMatchObject({ transaction: "DB_UNREACHABLE", after: "ok" });
    // never sent (postgres.js failed the new connection's start-up with the old error): a lost
    // connection, whose outcome a change cannot know, as any other
    expect(["ok", "OUTCOME_UNKNOWN"]).toContain(run.json.next);
    // the dead transaction's deduct of 5 is nowhere; each deduct of 1 that ran has its row
    expect(run.json.balance).toBe(100 - (run.json.ledgerRows - 1));
  });

  it("withTransaction, its statement in flight cut (the backend terminated): the process lives and the pool serves the next query", async () => {
    const run = await runApp("cut-in-flight", await migratedDatabase());
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.json).toMatchObject({ after: "ok" });
    expect(run.json.transaction).not.toBe("ok");
  });

  it("a pipelined deduct batch whose connection is cut while it waits for a row lock: the process lives, nothing applied", async () => {
    const run = await runApp("batch-cut", await migratedDatabase());
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.json).toMatchObject({ balance: 100, ledgerRows: 1 });
    for (const outcome of run.json.outcomes) expect(outcome).not.toBe("ok");
  });

  it("migrate on the app's pool, its reserved connection's backend terminated while it waits for the migration lock: the process lives", async () => {
    const run = await runApp("reserved-session", await migratedDatabase());
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.json).toMatchObject({ after: "ok" });
    expect(run.json.migrate).not.toBe("ok");
  });
});
