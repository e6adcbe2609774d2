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
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, openDatabase } from "../src/index.js";
import { appRole, buildLedger, forgetMigration, runTokenOperations } from "../harness/busy-ledger.mjs";
import { cli, freshDatabase, spawnCli } from "./support/databases.js";

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

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 1200; i++) {
    const found = await probe();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
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
