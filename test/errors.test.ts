import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runCli } from "../src/cli.js";
import { toBriefdbError } from "../src/core/failures.js";
import { BriefdbError, withTransaction, type BriefDatabase } from "../src/index.js";
import { DIALECTS } from "./support/databases.js";
import { destroyTest, initTest } from "./support/setup.js";

describe.each(DIALECTS)("%s: one error path", (dialect) => {
  let db: BriefDatabase;

  beforeAll(async () => {
    ({ db } = await initTest(dialect));
  });
  afterAll(() => destroyTest(db));

  it("a driver's error stays the database's: DB_ERROR with the driver's words, its cause kept", async () => {
    const caught = await db.all(sql`SELECT no_such_function_here()`).catch((error: unknown) => error);
    const error = toBriefdbError(caught, db);
    expect(error.code).toBe("DB_ERROR");
    expect(error.message).toMatch(/no_such_function_here/);
    expect(error.cause).toBe(caught);
  });

  it("a missing table is NOT_MIGRATED with the hint to migrate", async () => {
    const caught = await db.all(sql`SELECT * FROM no_such_table`).catch((error: unknown) => error);
    expect(toBriefdbError(caught, db)).toMatchObject({ code: "NOT_MIGRATED", hint: "run `briefdb migrate` first" });
  });

  it("a failure that is not the database's is INTERNAL, never DB_ERROR, with or without a database", async () => {
    const bug = new TypeError("cannot read properties of undefined");
    expect(toBriefdbError(bug, db)).toMatchObject({ code: "INTERNAL", cause: bug });
    expect(toBriefdbError(bug).code).toBe("INTERNAL");
    expect(toBriefdbError("a thrown string").code).toBe("INTERNAL");
    const result = await withTransaction(db, async () => {
      throw new RangeError("the operation's own failure");
    });
    expect(result.success).toBe(false);
    if (!result.success) expect(result.error.code).toBe("INTERNAL");
  });

  it("a BriefdbError passes through unchanged", () => {
    const error = new BriefdbError("USER_NOT_FOUND", "no user");
    expect(toBriefdbError(error, db)).toBe(error);
  });
});

describe("runCli", () => {
  it("resolves to the exit code instead of exiting: usage errors are 2, each said in one line", async () => {
    // what runCli writes is caught here, not left in the test run's log
    const written: string[] = [];
    const capture = (chunk: string | Uint8Array) => (written.push(String(chunk)), true);
    const out = vi.spyOn(process.stdout, "write").mockImplementation(capture);
    const err = vi.spyOn(process.stderr, "write").mockImplementation(capture);
    try {
      expect(await runCli(["tokens", "deduct", "someone", "1.5", "--json"])).toBe(2);
      expect(await runCli(["no-such-command"])).toBe(2);
      expect(await runCli(["migrate", "--status", "--dry-run", "--db", ":memory:"])).toBe(2);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(written.filter((line) => line.startsWith("error: "))).toHaveLength(3);
  });
});
