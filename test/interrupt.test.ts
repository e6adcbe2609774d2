/**
 * An interrupted write never lies (issue 9, item 1): a deduct waiting on a real lock held by
 * another connection, interrupted by SIGINT or SIGTERM, is cancelled (on PostgreSQL with the
 * protocol's cancel request, waited for) and exits 130 / 143 with one line; once the lock is
 * released, the deduct has not been applied.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BriefDatabase } from "../src/index.js";
import { DIALECTS, spawnCli } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";
import { ended, openHolder, untilNoStatements, untilWaiting } from "./support/locks.js";

describe.each(DIALECTS)("%s: a signal while a deduct waits on a lock", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  const ledgerRows = async (user: string) => {
    const [row] = await db.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM token_transactions WHERE user_id = ${user}`);
    return Number(row?.n);
  };
  const balance = async (user: string) => {
    const [row] = await db.all<{ b: number | string }>(sql`SELECT token_balance AS b FROM users WHERE id = ${user}`);
    return Number(row?.b);
  };

  it.each([
    ["SIGINT", 130, false],
    ["SIGTERM", 143, true],
    // the terminal closing (an ssh session dropped): by default it ended the process at once, and
    // the deduct it had sent committed once the lock was released, after a silent exit 129
    ["SIGHUP", 129, true],
  ] as const)("%s: cancelled, exit %i, one line, and the deduct never applies", async (signal, status, json) => {
    const user = `waiter-${signal}`;
    await newUser(db, { id: user, balance: 10 });
    const holder = await openHolder(dialect, url);
    if (dialect === "postgresql") await holder.run(`SELECT 1 FROM users WHERE id = '${user}' FOR UPDATE`);
    const child = spawnCli(["tokens", "deduct", user, "3", "--db", url, ...(json ? ["--json"] : [])]);
    const result = ended(child);
    try {
      await untilWaiting(dialect, url, child);
      child.kill(signal);
      const { code, stdout, stderr } = await result;
      expect(code).toBe(status);
      const lines = stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      // on SQLite the signal may land before the deduct began waiting (no other process can see
      // that it waits): then it is the plain interruption of a command that had changed nothing
      expect(lines[0]).toMatch(dialect === "postgresql" ? /^error: interrupted before the deduct was applied; nothing changed$/ : /^error: interrupted/);
      if (json) expect(JSON.parse(stdout)).toMatchObject({ ok: false, error: { code: "CANCELLED" } });
      else expect(stdout).toBe("");
    } finally {
      // released only now: a deduct that was not really stopped would commit here
      await holder.rollback();
    }
    if (dialect === "postgresql") await untilNoStatements(url);
    expect(await balance(user)).toBe(10);
    expect(await ledgerRows(user)).toBe(1);
  });

  it.each(["SIGINT", "SIGTERM", "SIGHUP"] as const)(
    "%s after the deduct's outcome was printed, while the process winds down: the run's exit code (0), not the signal's",
    async (signal) => {
      const user = `done-${signal}`;
      await newUser(db, { id: user, balance: 10 });
      const linger = pathToFileURL(resolve(import.meta.dirname, "support/linger-at-exit.mjs")).href;
      const child = spawnCli(["tokens", "deduct", user, "3", "--db", url, "--json"], { NODE_OPTIONS: `--import=${linger}` });
      const result = ended(child);
      let stderr = "";
      await new Promise<void>((done) => child.stderr.on("data", (chunk: Buffer) => ((stderr += chunk), stderr.includes("lingering") && done())));
      child.kill(signal);
      const { code, stdout } = await result;
      // killed by the signal, a shell saw 130/143/129: "interrupted", though the deduct was applied
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ ok: true, balance: 7 });
      expect(await balance(user)).toBe(7);
    },
  );
});

