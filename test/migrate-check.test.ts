import { sql } from "drizzle-orm";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { migrate, migrationStatus, openDatabase } from "../src/index.js";
import { cli, DIALECTS, freshDatabase } from "./support/databases.js";

const TAG = "0001_ledger_history_order";

/** A migrated database with three ledger rows and the index migration pending again. */
async function ledgerWithIndexMigrationPending(dialect: (typeof DIALECTS)[number]): Promise<string> {
  const url = await freshDatabase(dialect);
  expect((await cli(["migrate", "--db", url])).code).toBe(0);
  const db = await openDatabase(url);
  try {
    await db.run(sql`INSERT INTO users (id, email, name, token_balance, created_at, updated_at) VALUES ('u1', 'u1@example.invalid', 'U', 3, ${db.time.fromEpochMs(0)}, ${db.time.fromEpochMs(0)})`);
    for (const n of [1, 2, 3]) {
      await db.run(
        sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at) VALUES (${`t${n}`}, 'u1', 1, 'credit', 'test', ${n}, ${db.time.fromEpochMs(n)})`,
      );
    }
    await db.run(sql`DELETE FROM briefdb_migrations WHERE tag = ${TAG}`);
    if (await db.tableExists("briefdb_migration_steps")) await db.run(sql`DELETE FROM briefdb_migration_steps WHERE tag = ${TAG}`);
    if (dialect === "postgresql") await db.exec("ANALYZE users, token_transactions");
  } finally {
    await db.close();
  }
  return url;
}

describe.each(DIALECTS)("%s: migrate --check", (dialect) => {
  it("on a fresh database every statement is on a table created in the same run: no hazard", async () => {
    const url = await freshDatabase(dialect);
    const check = await cli(["migrate", "--check", "--max-blocking-rows", "0", "--db", url, "--json"]);
    expect(check.code).toBe(0);
    expect(check.json).toMatchObject({ ok: true, hazards: 0, maxBlockingRows: 0 });
    expect(check.json?.statements.length).toBeGreaterThan(30);
    expect(check.json?.statements.every((s: { hazard: boolean }) => !s.hazard)).toBe(true);
  });

  it("measures each pending statement's lock against the table's live size, and exits 1 above --max-blocking-rows", async () => {
    const url = await ledgerWithIndexMigrationPending(dialect);
    const roomy = await cli(["migrate", "--check", "--db", url, "--json"]);
    expect(roomy.code).toBe(0);
    expect(roomy.json).toMatchObject({ ok: true, hazards: 0, maxBlockingRows: 100_000 });
    const [drop, create] = roomy.json?.statements ?? [];
    expect(drop).toMatchObject({ tag: TAG, kind: "drop-index", table: "token_transactions", rows: 3 });
    expect(create).toMatchObject({ tag: TAG, kind: "create-index", table: "token_transactions", rows: 3, holds: "while it builds the index" });

    const tight = await cli(["migrate", "--check", "--max-blocking-rows", "2", "--db", url, "--json"]);
    const asWritten = await cli(["migrate", "--check", "--offline", "--max-blocking-rows", "2", "--db", url, "--json"]);
    expect(asWritten.code).toBe(1);
    expect(asWritten.json?.error).toMatchObject({ code: "UNHEALTHY" });
    if (dialect === "sqlite") {
      // one writer at a time: the build holds the write lock, with the table's exact row count
      expect(create).toMatchObject({ lock: "write lock (whole database)", blocksWrites: true, blocksReads: false, online: false, rowsEstimated: false });
      expect(tight.code).toBe(1);
      expect(tight.json).toMatchObject({ ok: false, hazards: 2 });
    } else {
      expect(create).toMatchObject({ lock: "SHARE UPDATE EXCLUSIVE", blocksWrites: false, online: true, rowsEstimated: true });
      expect(drop).toMatchObject({ lock: "SHARE UPDATE EXCLUSIVE", blocksReads: false, online: true });
      expect(tight.code).toBe(0);
      expect(asWritten.json?.statements).toMatchObject([
        { kind: "drop-index", lock: "ACCESS EXCLUSIVE", blocksReads: true, blocksWrites: true, hazard: true },
        { kind: "create-index", lock: "SHARE", blocksReads: false, blocksWrites: true, hazard: true },
      ]);
    }
    // a check changes nothing
    const status = await cli(["migrate", "--status", "--db", url, "--json"]);
    expect(status.json?.pending).toEqual([TAG]);
  });

  it("--max-blocking-rows without --check, or --check with --status, is a usage error (exit 2)", async () => {
    const url = await freshDatabase(dialect);
    const alone = await cli(["migrate", "--max-blocking-rows", "5", "--db", url]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/^error: --max-blocking-rows goes with --check/);
    expect((await cli(["migrate", "--check", "--status", "--db", url])).code).toBe(2);
    expect((await cli(["migrate", "--check", "--max-blocking-rows", "-1", "--db", url])).code).toBe(2);
  });
});

describe("postgresql: migrate through the app's own pool", () => {
  it("applies the index migration online on a connection of the app's pool, and leaves the pool to the app", async () => {
    const url = await ledgerWithIndexMigrationPending("postgresql");
    // a cold pool that fetches no types: postgres.js's reserve() would hang on it unwarmed (porsager/postgres#751)
    const client = postgres(url, { max: 2, fetch_types: false, onnotice: () => {} });
    try {
      const db = await openDatabase(client);
      const result = await migrate(db);
      expect(result).toMatchObject({ applied: [TAG], online: true, repairedIndexes: [] });
      expect(await migrationStatus(db)).toMatchObject({ pending: [], partial: [], invalidIndexes: [] });
      await db.close();
      expect(await client`SELECT 1 AS ok`).toEqual([{ ok: 1 }]);
    } finally {
      await client.end({ timeout: 1 });
    }
  });
});

describe("postgresql: INVALID indexes that no pending migration touches", () => {
  it("migrate drops its own leftover temporary, and leaves an index that is not briefdb's alone, saying so", async () => {
    const url = await ledgerWithIndexMigrationPending("postgresql");
    expect((await cli(["migrate", "--db", url])).code).toBe(0);
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    const leftover = "token_transactions_user_id_created_at_idx_briefdb_new";
    try {
      // two failed concurrent builds (duplicate keys) leave two INVALID indexes: an app's own, and
      // a replacement's temporary left by an interrupted online run that --offline then finished
      for (const name of ["app_reason_unique", leftover]) {
        await expect(admin.unsafe(`CREATE UNIQUE INDEX CONCURRENTLY "${name}" ON token_transactions (reason)`)).rejects.toThrow(/could not create unique index/);
      }
      const status = await cli(["migrate", "--status", "--db", url, "--json"]);
      expect(status.code).toBe(1);
      expect(status.json).toMatchObject({
        error: { code: "UNHEALTHY", hint: expect.stringContaining("app_reason_unique: not one briefdb's migrations make") },
        invalidIndexes: [
          { index: "app_reason_unique", briefdb: false },
          { index: leftover, briefdb: true },
        ],
      });

      const run = await cli(["migrate", "--db", url, "--json"]);
      expect(run.code).toBe(0);
      expect(run.json).toMatchObject({ applied: [], repairedIndexes: [leftover], foreignInvalidIndexes: ["app_reason_unique"] });
      const indexes = await admin<{ name: string; valid: boolean }[]>`
        SELECT c.relname AS name, x.indisvalid AS valid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        WHERE x.indrelid = 'token_transactions'::regclass AND (c.relname LIKE 'app_%' OR c.relname LIKE '%briefdb_new%' OR c.relname LIKE '%_cc%')`;
      expect(indexes).toEqual([{ name: "app_reason_unique", valid: false }]);
    } finally {
      await admin.end();
    }
  });
});

describe("postgresql: migrate --dry-run shows what will run", () => {
  it("online: the index replaced concurrently under a temporary name; --offline: the file's SQL in one transaction", async () => {
    const url = await ledgerWithIndexMigrationPending("postgresql");
    const index = "token_transactions_user_id_created_at_idx";
    const online = await cli(["migrate", "--dry-run", "--db", url, "--json"]);
    expect(online.code).toBe(0);
    expect(online.json).toMatchObject({ dryRun: true, online: true, pending: [{ tag: TAG }] });
    expect(online.json?.pending[0].statements).toEqual([
      `CREATE INDEX CONCURRENTLY "${index}_briefdb_new" ON "token_transactions" USING btree ("user_id","created_at","id");`,
      `DROP INDEX CONCURRENTLY IF EXISTS "${index}"`,
      `ALTER INDEX "${index}_briefdb_new" RENAME TO "${index}"`,
    ]);
    const offline = await cli(["migrate", "--dry-run", "--offline", "--db", url, "--json"]);
    expect(offline.json).toMatchObject({ dryRun: true, online: false });
    expect(offline.json?.pending[0].statements[0]).toBe(`DROP INDEX "${index}";`);
    expect((await cli(["migrate", "--status", "--db", url])).code).toBe(1); // nothing changed
  });

  it("--check lists what --dry-run runs beside the file's statements: the rename into place, and the drop of a killed build's INVALID index", async () => {
    const url = await ledgerWithIndexMigrationPending("postgresql");
    const index = "token_transactions_user_id_created_at_idx";
    const rename = { kind: "rename-index", table: "token_transactions", lock: "SHARE UPDATE EXCLUSIVE", blocksReads: false, blocksWrites: false, holds: "brief", online: true, hazard: false };
    const check = await cli(["migrate", "--check", "--db", url, "--json"]);
    expect(check.code).toBe(0);
    expect(check.json?.statements).toMatchObject([{ kind: "drop-index" }, { kind: "create-index" }, { ...rename, statement: `ALTER INDEX "${index}_briefdb_new" RENAME TO "${index}"` }]);
    // a build of the temporary that failed (as a killed one does) leaves it INVALID
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await expect(admin.unsafe(`CREATE UNIQUE INDEX CONCURRENTLY "${index}_briefdb_new" ON token_transactions (user_id)`)).rejects.toThrow(/duplicate key|could not create unique index/);
    } finally {
      await admin.end();
    }
    const dry = await cli(["migrate", "--dry-run", "--db", url, "--json"]);
    expect(dry.json?.pending[0].statements[0]).toBe(`DROP INDEX CONCURRENTLY IF EXISTS "${index}_briefdb_new"`);
    const after = await cli(["migrate", "--check", "--db", url, "--json"]);
    expect(after.code).toBe(0);
    expect(after.json?.statements).toMatchObject([
      { kind: "drop-index" },
      { kind: "drop-index", statement: `DROP INDEX CONCURRENTLY IF EXISTS "${index}_briefdb_new"`, table: "token_transactions", lock: "SHARE UPDATE EXCLUSIVE", blocksWrites: false, hazard: false },
      { kind: "create-index" },
      rename,
    ]);
    expect((await cli(["migrate", "--status", "--db", url])).code).toBe(1); // nothing changed
  });
});
