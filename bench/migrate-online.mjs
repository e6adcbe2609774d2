// Performance target (docs/performance.md): the longest token-operation wait while `briefdb migrate` rebuilds the ledger's history
// index (0001_ledger_history_order) on a 1,000,000-row ledger, online and --offline, same run.
// The app: 4 connections crediting and deducting throughout. As written (--offline, the baseline)
// they have no lock_timeout, so a blocked operation waits as long as the migration makes it;
// online they run with lock_timeout = 100ms, so any lock wait past 100 ms fails the operation.
// Target: online, no operation fails (no lock wait past 100 ms). The longest wall-clock time of an
// operation is shown too, beside the same operations run with no migration (the machine's own
// noise: on 2 shared cores the build competes with them for CPU and disk, not for locks).
//   BRIEFDB_BENCH_LEDGER_ROWS  ledger rows (default 1000000)
//   BRIEFDB_BENCH_PG_URL       a local PostgreSQL to create a scratch database on (else an embedded one)
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { atomicTokenOperation, openDatabase } from "briefdb";
import { appRole, buildLedger, forgetMigration, runTokenOperations } from "../harness/busy-ledger.mjs";
import { createDatabase, startBenchPostgres } from "../harness/postgres.mjs";

const TAG = "0001_ledger_history_order";
const TARGET_MS = 100;
const CONNECTIONS = 4;
const BIN = fileURLToPath(new URL("../bin/briefdb", import.meta.url));

/** @returns {Promise<import("./report.mjs").BenchResult[]>} */
export async function run() {
  const rows = Number(process.env.BRIEFDB_BENCH_LEDGER_ROWS ?? 1_000_000);
  const server = await startBenchPostgres();
  try {
    const url = await createDatabase(server.url, `briefdb_bench_migrate_${randomBytes(4).toString("hex")}`);
    await briefdb(["migrate", "--db", url]);
    const start = process.hrtime.bigint();
    await buildLedger(url, rows);
    console.log(`${fmt(rows)} ledger rows built in ${seconds(start)} s; load average ${(loadavg()[0] ?? 0).toFixed(1)} on ${availableParallelism()} cores`);
    const app = await appRole(url, `briefs_bench_app_${process.pid}`, "0");
    try {
      const offline = await migrateWhileBusy(url, app.url, ["--offline"], 0);
      const online = await migrateWhileBusy(url, app.url, [], TARGET_MS);
      // the same operations for as long, with no migration: how long one takes on this machine anyway
      const quiet = await busyFor(app.url, Number(online.migrateS) * 1000);
      return [
        {
          name: `longest token-operation wait during migrate, ${fmt(rows)} ledger rows, ${CONNECTIONS} connections`,
          briefdb: `online ${online.longestMs.toFixed(0)} ms (${fmt(online.operations)} operations, ${online.failures.length} waited on a lock past ${TARGET_MS} ms; migrate ${online.migrateS} s)`,
          baseline: `--offline ${offline.longestMs.toFixed(0)} ms (${fmt(offline.operations)} operations, ${offline.failures.length} failed; migrate ${offline.migrateS} s)`,
          extra: [
            `no migrate, same operations for as long: longest ${quiet.longestMs.toFixed(0)} ms (${fmt(quiet.operations)} operations) — the machine's own noise`,
          ],
          ratio: offline.longestMs / online.longestMs,
          checks: [{ text: `online: no lock wait past ${TARGET_MS} ms`, met: online.failures.length === 0 }],
        },
      ];
    } finally {
      await app.drop();
    }
  } finally {
    await server.stop();
  }
}

/**
 * @param {string} url @param {string} appUrl @param {string[]} args
 * @param {number} lockTimeoutMs the app's lock budget (0: none, wait as long as it takes)
 */
async function migrateWhileBusy(url, appUrl, args, lockTimeoutMs) {
  await forgetMigration(url, TAG);
  const db = await openDatabase(appUrl, { poolSize: CONNECTIONS, lockTimeoutMs });
  try {
    const ops = runTokenOperations(db, atomicTokenOperation, CONNECTIONS);
    await ops.started;
    const start = process.hrtime.bigint();
    await briefdb(["migrate", "--db", url, ...args]);
    const migrateS = seconds(start);
    return { ...(await ops.stop()), migrateS };
  } finally {
    await db.close();
  }
}

/** @param {string} appUrl @param {number} ms */
async function busyFor(appUrl, ms) {
  const db = await openDatabase(appUrl, { poolSize: CONNECTIONS, lockTimeoutMs: 0 });
  try {
    const ops = runTokenOperations(db, atomicTokenOperation, CONNECTIONS);
    await ops.started;
    await new Promise((resolve) => setTimeout(resolve, ms));
    return await ops.stop();
  } finally {
    await db.close();
  }
}

/** @param {string[]} args @returns {Promise<string>} */
function briefdb(args) {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [BIN, ...args], (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout))),
  );
}

/** @param {bigint} start */
function seconds(start) {
  return (Number(process.hrtime.bigint() - start) / 1e9).toFixed(1);
}

/** @param {number} n */
function fmt(n) {
  return n.toLocaleString("en-US");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printResults } = await import("./report.mjs");
  printResults(await run());
}
