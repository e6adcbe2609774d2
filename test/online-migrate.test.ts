/**
 * Online index changes on PostgreSQL, proved on a big ledger with the app running: token
 * operations from parallel connections, each session giving up on any lock wait over 100 ms
 * (the app's budget, lock_timeout), run throughout `migrate`. As written (--offline) the index
 * migration makes them fail; online, none does. Interrupted builds (SIGTERM, a server-side cancel)
 * leave an INVALID index that `migrate --status` and `health` report and the next `migrate`
 * repairs. The ledger is built once and reused by every case: 500,000 rows by default (the
 * 1,000,000-row build took 40 s on the shared test machine, where bench/migrate-online.mjs runs
 * the full million); BRIEFDB_TEST_LEDGER_ROWS=1000000 runs the size. At either size the
 * offline build holds its lock for many times the 100 ms budget.
 *
 * The holds migration (0002) on the same ledger: its foreign key on the ledger, added as written,
 * scans every row while the migration's ADD COLUMN holds the ledger's ACCESS EXCLUSIVE lock; online
 * it is added NOT VALID and validated in a step that lets writes go on. The app writing meanwhile
 * is the one deployed before holds (plain SQL on the columns 0001 has).
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, openDatabase } from "../src/index.js";
import {
  appRole,
  buildLedger,
  forgetHoldsMigration,
  forgetMigration,
  HOLDS_TAG,
  runLedgerWrites,
  runTokenOperations,
} from "../harness/busy-ledger.mjs";
import { cli, freshDatabase, spawnCli } from "./support/databases.js";
import { killWhileValidateWaits, startHoldsMigrationHeldAtBuild, waitFor } from "./support/held-migration.js";

const ROWS = Number(process.env.BRIEFDB_TEST_LEDGER_ROWS ?? 500_000);
const TAG = "0001_ledger_history_order";
const INDEX = "token_transactions_user_id_created_at_idx";
const TEMPORARY = `${INDEX}_briefdb_new`;
const CONNECTIONS = 4;

let url: string;
let app: { url: string; drop(): Promise<void> };
let admin: postgres.Sql;

beforeAll(async () => {
  url = await freshDatabase("postgresql");
  expect((await cli(["migrate", "--db", url])).code).toBe(0);
  await buildLedger(url, ROWS);
  app = await appRole(url, `briefs_app_${process.pid}`, "100ms");
  admin = postgres(url, { max: 2, onnotice: () => {} });
}, 600_000);

afterAll(async () => {
  await admin?.end();
  await app?.drop();
});

/** Runs `migrate` with the app busy throughout; what the app saw, and how migrate ended. */
async function migrateWhileBusy(args: readonly string[]) {
  // the app's lock budget: any lock wait past 100 ms fails the operation (LOCK_TIMEOUT)
  const db = await openDatabase(app.url, { poolSize: CONNECTIONS, lockTimeoutMs: 100 });
  try {
    const ops = runTokenOperations(db, atomicTokenOperation, CONNECTIONS);
    await ops.started;
    const run = await cli(["migrate", "--db", url, "--json", ...args], { timeoutMs: 600_000 });
    const seen = await ops.stop();
    return { run, ...seen };
  } finally {
    await db.close();
  }
}

async function indexState(name: string) {
  const rows = await admin<{ valid: boolean; definition: string }[]>`
    SELECT x.indisvalid AS valid, pg_get_indexdef(x.indexrelid) AS definition
    FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE c.relname = ${name}`;
  return rows[0];
}

/** Starts `migrate` while a writer's open transaction holds the concurrent build in its first wait. */
async function startHeldBuild() {
  const writer = postgres(url, { max: 1, onnotice: () => {} });
  await writer.unsafe("BEGIN");
  await writer.unsafe("LOCK TABLE token_transactions IN ROW EXCLUSIVE MODE");
  const child = spawnCli(["migrate", "--db", url, "--json"]);
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const { pid } = await waitFor("the build to wait for the writer", async () => {
    const [row] = await admin<{ pid: number; phase: string }[]>`
      SELECT p.pid, p.phase FROM pg_stat_progress_create_index p JOIN pg_stat_activity a USING (pid)
      WHERE a.datname = current_database()`;
    return row?.phase === "waiting for writers before build" ? row : undefined;
  });
  const release = async () => {
    await writer.unsafe("COMMIT");
    await writer.end();
  };
  return { child, exited, pid, release };
}

async function expectRepairedByNextMigrate() {
  const status = await cli(["migrate", "--status", "--db", url, "--json"]);
  expect(status.code).toBe(1);
  expect(status.json).toMatchObject({ ok: false, error: { code: "UNHEALTHY" }, pending: [TAG], invalidIndexes: [{ index: TEMPORARY, table: "token_transactions" }] });
  const health = await cli(["health", "--db", url, "--json"]);
  expect(health.code).toBe(1);
  expect(health.json).toMatchObject({ healthy: false, invalidIndexes: [TEMPORARY] });

  const repair = await cli(["migrate", "--db", url, "--json"], { timeoutMs: 600_000 });
  expect(repair.code).toBe(0);
  expect(repair.json).toMatchObject({ applied: [TAG], online: true, repairedIndexes: [TEMPORARY] });
  expect(await indexState(TEMPORARY)).toBeUndefined();
  expect(await indexState(INDEX)).toMatchObject({ valid: true, definition: expect.stringContaining("(user_id, created_at, id)") });
  expect((await cli(["health", "--db", url, "--json"])).code).toBe(0);
}

describe("postgresql: online index migration on a busy ledger", () => {
  it("as written (--offline), the index migration makes the app's token operations wait past their 100 ms budget", async () => {
    await forgetMigration(url, TAG);
    const { run, operations, failures } = await migrateWhileBusy(["--offline"]);
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({ applied: [TAG], online: false });
    expect(operations).toBeGreaterThan(CONNECTIONS);
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((failure: string) => failure.startsWith("LOCK_TIMEOUT: "))).toBe(true);
  });

  it("online, no token operation fails while the index is rebuilt, and the ledger still reconciles", async () => {
    await forgetMigration(url, TAG);
    const { run, operations, failures } = await migrateWhileBusy([]);
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({ applied: [TAG], online: true, repairedIndexes: [] });
    expect(operations).toBeGreaterThan(CONNECTIONS);
    expect(failures).toEqual([]);
    expect(await indexState(INDEX)).toMatchObject({ valid: true, definition: expect.stringContaining("(user_id, created_at, id)") });
    expect(await indexState(TEMPORARY)).toBeUndefined();
    const steps = await admin<{ action: string }[]>`SELECT action FROM briefdb_migration_steps WHERE tag = ${TAG} ORDER BY step`;
    expect(steps.map((s) => s.action)).toEqual([
      `build index ${TEMPORARY} on token_transactions concurrently`,
      `drop index ${INDEX} concurrently`,
      `rename index ${TEMPORARY} to ${INDEX}`,
    ]);
    const verify = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(verify.code).toBe(0);
    expect(verify.json).toMatchObject({ ok: true, drifting: [] });
  });

  it("a build cancelled on the server leaves an INVALID index that status and health report and the next migrate rebuilds", async () => {
    await forgetMigration(url, TAG);
    const build = await startHeldBuild();
    await admin`SELECT pg_cancel_backend(${build.pid})`;
    expect(await build.exited).toBe(1);
    await build.release();
    expect(await indexState(TEMPORARY)).toMatchObject({ valid: false });
    await expectRepairedByNextMigrate();
  });

  it("a migrate killed (SIGTERM) mid-build leaves an INVALID index that the next migrate rebuilds", async () => {
    await forgetMigration(url, TAG);
    const build = await startHeldBuild();
    build.child.kill("SIGTERM");
    await build.exited;
    // the server notices the client is gone (client_connection_check_interval) and ends the build
    await waitFor("the killed migrate's session to end", async () => {
      const rows = await admin`SELECT 1 FROM pg_stat_activity WHERE pid = ${build.pid}`;
      return rows.length === 0 ? true : undefined;
    });
    await build.release();
    expect(await indexState(TEMPORARY)).toMatchObject({ valid: false });
    await expectRepairedByNextMigrate();
  });

  it("a second migrate, online or --offline, started during an online build waits for it, and neither fails", async () => {
    await forgetMigration(url, TAG);
    const build = await startHeldBuild();
    const others = [spawnCli(["migrate", "--db", url, "--json"]), spawnCli(["migrate", "--offline", "--db", url, "--json"])];
    const othersExited = others.map((child) => new Promise<number | null>((resolve) => child.on("close", resolve)));
    // both wait for the migration lock while the first one's build runs its waits for older snapshots
    await waitFor("both to wait for the migration lock", async () => {
      const rows = await admin`
        SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> ${build.pid} AND query LIKE '%advisory%lock%' AND query NOT LIKE '%pg_stat_activity%'`;
      return rows.length >= 2 ? true : undefined;
    });
    await build.release();
    expect(await build.exited).toBe(0);
    expect(await Promise.all(othersExited)).toEqual([0, 0]);
    expect(await indexState(INDEX)).toMatchObject({ valid: true, definition: expect.stringContaining("(user_id, created_at, id)") });
    expect(await indexState(TEMPORARY)).toBeUndefined();
  });
});

const HOLD_FK = "token_transactions_hold_id_token_holds_id_fk";

async function holdForeignKey() {
  const [row] = await admin<{ valid: boolean }[]>`SELECT convalidated AS valid FROM pg_constraint WHERE conname = ${HOLD_FK}`;
  return row;
}

/** Runs `migrate` with the pre-holds app writing throughout; what the app saw, and how migrate ended. */
async function migrateHoldsWhileBusy(args: readonly string[]) {
  const writes = runLedgerWrites(app.url, CONNECTIONS);
  await writes.started;
  const run = await cli(["migrate", "--db", url, "--json", ...args], { timeoutMs: 600_000 });
  return { run, ...(await writes.stop()) };
}

describe("postgresql: the holds migration's foreign key on a busy ledger", () => {
  it("migrate --check: online nothing blocks writes for longer than a moment; as written, the foreign key's check holds the ADD COLUMNs' locks", async () => {
    await forgetHoldsMigration(url);
    const online = await cli(["migrate", "--check", "--db", url, "--json"]);
    expect(online.code).toBe(0);
    expect(online.json).toMatchObject({ hazards: 0 });
    const statements = online.json?.statements as Array<Record<string, unknown>>;
    expect(statements.filter((s) => s.table === "token_transactions" && s.kind !== "create-index")).toMatchObject([
      { kind: "add-column", lock: "ACCESS EXCLUSIVE", holds: "brief", hazard: false },
      { kind: "add-foreign-key", lock: "SHARE ROW EXCLUSIVE", holds: "brief", online: true, hazard: false },
      { kind: "validate-constraint", lock: "SHARE UPDATE EXCLUSIVE", blocksWrites: false, online: true, hazard: false },
    ]);
    const asWritten = await cli(["migrate", "--check", "--offline", "--db", url, "--json"]);
    expect(asWritten.code).toBe(1);
    expect((asWritten.json?.statements as Array<Record<string, unknown>>).filter((s) => s.hazard)).toMatchObject([
      { kind: "add-column", table: "token_transactions", holds: "until the transaction ends" },
      { kind: "add-column", table: "users", holds: "until the transaction ends" },
      { kind: "add-foreign-key", table: "token_transactions", holds: "while it scans the table" },
      { kind: "create-index", table: "token_transactions" },
    ]);
  });

  it("online, no write waits past its 100 ms budget, and the foreign key ends VALID", async () => {
    await forgetHoldsMigration(url);
    const { run, operations, failures } = await migrateHoldsWhileBusy([]);
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({ applied: [HOLDS_TAG], online: true });
    expect(operations).toBeGreaterThan(CONNECTIONS);
    expect(failures).toEqual([]);
    expect(await holdForeignKey()).toEqual({ valid: true });
    const steps = await admin<{ action: string }[]>`SELECT action FROM briefdb_migration_steps WHERE tag = ${HOLDS_TAG} ORDER BY step`;
    expect(steps.map((s) => s.action)).toEqual([
      "10 statement(s) in a transaction",
      "build index token_transactions_hold_id_unique on token_transactions concurrently",
      `validate constraint ${HOLD_FK} on token_transactions`,
    ]);
    // no write lost or doubled by the migration: every balance its ledger, the holds intact; and
    // history order is apply order, though the app's writes queued behind the migration's brief
    // locks and then raced for their users' rows (their rows are stamped by the column's default,
    // the time of the insert since 0003: test/ledger-order.test.ts forces that race)
    const verify = await cli(["tokens", "verify", "--db", url, "--json"]);
    expect(verify.json, JSON.stringify(verify.json)).toMatchObject({ ok: true, drifting: [], holdViolations: [], outOfOrder: [] });
  }, 300_000);

  it("a migrate killed while its VALIDATE waits leaves the constraint NOT VALID, and the next migrate validates it and records the migration", async () => {
    await forgetHoldsMigration(url);
    await killWhileValidateWaits(url, admin, await startHoldsMigrationHeldAtBuild(url, admin));

    expect(await holdForeignKey()).toEqual({ valid: false });
    const status = await cli(["migrate", "--status", "--db", url, "--json"]);
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ pending: [HOLDS_TAG], partial: [{ tag: HOLDS_TAG }] });
    const rerun = await cli(["migrate", "--db", url, "--json"], { timeoutMs: 600_000 });
    expect(rerun.code).toBe(0);
    expect(rerun.json).toMatchObject({ applied: [HOLDS_TAG], online: true });
    expect(await holdForeignKey()).toEqual({ valid: true });
    expect((await cli(["migrate", "--status", "--db", url, "--json"])).code).toBe(0);
  }, 300_000);

  it("a ledger row that breaks the foreign key fails its validation: the migration stays pending with the constraint NOT VALID, and a rerun after the row is fixed completes", async () => {
    await forgetHoldsMigration(url);
    const held = await startHoldsMigrationHeldAtBuild(url, admin);
    // a row older than the check: written with triggers off (a bulk load), naming a hold that never was
    const rogue = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await rogue.unsafe("SET session_replication_role = replica");
      await rogue.unsafe(`
        INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, hold_id)
        VALUES ('tx-rogue', 'user-1', 1, 'credit', 'rogue', 1, 'hold-gone')`);
    } finally {
      await rogue.end();
    }
    await held.release();
    const failed = await held.exited;
    expect(failed.code).toBe(1);
    expect(failed.json()).toMatchObject({
      ok: false,
      error: {
        code: "INVARIANT_VIOLATED",
        message: `existing rows of token_transactions violate constraint ${HOLD_FK}: Key (hold_id)=(hold-gone) is not present in table "token_holds".`,
        hint: expect.stringContaining("run `briefdb migrate` again"),
      },
    });
    expect(await holdForeignKey()).toEqual({ valid: false });
    expect((await cli(["migrate", "--status", "--db", url, "--json"])).json).toMatchObject({ pending: [HOLDS_TAG] });
    // --dry-run and --check say what the rerun will do: only the validation, not the finished steps again
    const validate = `ALTER TABLE "token_transactions" VALIDATE CONSTRAINT "${HOLD_FK}"`;
    const dryRun = await cli(["migrate", "--dry-run", "--db", url, "--json"]);
    expect(dryRun.json).toMatchObject({ ok: true, pending: [{ tag: HOLDS_TAG, statements: [validate] }] });
    const check = await cli(["migrate", "--check", "--db", url, "--json"]);
    expect((check.json as { statements: Array<{ statement: string }> }).statements.map((s) => s.statement)).toEqual([validate]);
    // --offline would repeat the finished steps: the dry run refuses as the run does
    const offline = await cli(["migrate", "--dry-run", "--offline", "--db", url, "--json"]);
    expect(offline.code).toBe(2);
    expect(offline.json).toMatchObject({ ok: false, error: { code: "USAGE" } });
    // new rows are checked already
    await expect(
      admin.unsafe(`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, hold_id) VALUES ('tx-rogue-2', 'user-1', 1, 'credit', 'rogue', 1, 'hold-gone-too')`),
    ).rejects.toThrow(/violates foreign key constraint/);

    await admin`DELETE FROM token_transactions WHERE id = 'tx-rogue'`;
    // a DBA dropped the failed constraint by hand meanwhile: the rerun adds it again, then validates it
    await admin.unsafe(`ALTER TABLE token_transactions DROP CONSTRAINT ${HOLD_FK}`);
    const rerun = await cli(["migrate", "--db", url, "--json"], { timeoutMs: 600_000 });
    expect(rerun.code).toBe(0);
    expect(rerun.json).toMatchObject({ applied: [HOLDS_TAG] });
    expect(await holdForeignKey()).toEqual({ valid: true });
  }, 300_000);

  it("the transaction that adds the columns waits for a lock at most the brief lock timeout, then tries again", async () => {
    await forgetHoldsMigration(url);
    const reader = postgres(url, { max: 1, onnotice: () => {} });
    await reader.unsafe("BEGIN");
    await reader.unsafe("LOCK TABLE token_transactions IN ACCESS SHARE MODE"); // a long read of the ledger
    const child = spawnCli(["migrate", "--db", url, "--json"]);
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    const waiting = (after: string | null) => async () => {
      const [row] = await admin<{ pid: number; started: string }[]>`
        SELECT pid, xact_start::text AS started FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'
          AND (query LIKE '%ADD COLUMN "hold_id"%' OR query LIKE 'BEGIN;%CREATE TABLE "token_holds"%')`; // the step is one message, shown cut at 1 kB
      return row !== undefined && row.started !== after ? row : undefined;
    };
    const first = await waitFor("the ADD COLUMN to wait for the reader", waiting(null));
    const second = await waitFor("the ADD COLUMN's transaction to be tried again", waiting(first.started));
    expect(second.pid).toBe(first.pid);
    await reader.unsafe("COMMIT");
    await reader.end();
    expect(await exited).toBe(0);
    expect(await holdForeignKey()).toEqual({ valid: true });
  }, 300_000);
});
