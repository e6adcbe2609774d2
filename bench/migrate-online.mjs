// Issue 13: the longest token-operation wait while `briefdb migrate` rebuilds the ledger's history
// index (0001_ledger_history_order) on a 1,000,000-row ledger, online and --offline, same run.
// The app: 4 connections crediting and deducting throughout, with no lock_timeout of their own, so
// that a blocked operation waits as long as the migration makes it. Target: online, no operation
// waits more than 100 ms; the baseline is the same migration as written, in one transaction. The
// same operations with no migration running give the machine's own noise floor beside them.
//   BRIEFDB_BENCH_LEDGER_ROWS  ledger rows (default 1000000)
//   BRIEFDB_BENCH_PG_URL       a local PostgreSQL to create a scratch database on (else an embedded one)
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { atomicTokenOperation, openDatabase } from "../dist/index.js";
import { appRole, buildLedger, forgetMigration, runTokenOperations } from "../test/support/busy-ledger.mjs";
import { createDatabase, startPostgres } from "./pg-server.mjs";

const TAG = "0001_ledger_history_order";
const TARGET_MS = 100;
const CONNECTIONS = 4;
const BIN = fileURLToPath(new URL("../bin/briefdb", import.meta.url));

export async function run() {
  const rows = Number(process.env.BRIEFDB_BENCH_LEDGER_ROWS ?? 1_000_000);
  const server = await startPostgres();
  try {
    const url = await createDatabase(server.url, `briefdb_bench_migrate_${randomBytes(4).toString("hex")}`);
    await briefdb(["migrate", "--db", url]);
    const start = process.hrtime.bigint();
    await buildLedger(url, rows);
    console.log(`${fmt(rows)} ledger rows built in ${seconds(start)} s; load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores`);
    const app = await appRole(url, `briefs_bench_app_${process.pid}`, "0");
    try {
      const offline = await migrateWhileBusy(url, app.url, ["--offline"]);
      const online = await migrateWhileBusy(url, app.url, []);
      // the same operations for as long, with no migration: how long one takes on this machine anyway
      const quiet = await busyFor(app.url, Number(online.migrateS) * 1000);
      return [
        {
          name: `longest token-operation wait during migrate, ${fmt(rows)} ledger rows, ${CONNECTIONS} connections`,
          briefdb: `online ${online.longestMs.toFixed(0)} ms (${fmt(online.operations)} operations, ${online.failures.length} failed; migrate ${online.migrateS} s)`,
          baseline: `--offline ${offline.longestMs.toFixed(0)} ms (${fmt(offline.operations)} operations, ${offline.failures.length} failed; migrate ${offline.migrateS} s)`,
          extra: [
            `no migrate, same operations for as long: longest ${quiet.longestMs.toFixed(0)} ms (${fmt(quiet.operations)} operations) — the machine's own noise`,
            `target: online ≤ ${TARGET_MS} ms — ${online.longestMs <= TARGET_MS && online.failures.length === 0 ? "ok" : "MISSES TARGET"}`,
          ],
          ratio: offline.longestMs / online.longestMs,
          exitCode: online.longestMs <= TARGET_MS && online.failures.length === 0 ? 0 : 1,
        },
      ];
    } finally {
      await app.drop();
    }
  } finally {
    await server.stop();
  }
}

async function migrateWhileBusy(url, appUrl, args) {
  await forgetMigration(url, TAG);
  const db = await openDatabase(appUrl, { poolSize: CONNECTIONS });
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

async function busyFor(appUrl, ms) {
  const db = await openDatabase(appUrl, { poolSize: CONNECTIONS });
  try {
    const ops = runTokenOperations(db, atomicTokenOperation, CONNECTIONS);
    await ops.started;
    await new Promise((resolve) => setTimeout(resolve, ms));
    return await ops.stop();
  } finally {
    await db.close();
  }
}

function briefdb(args) {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [BIN, ...args], (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout))),
  );
}

function seconds(start) {
  return (Number(process.hrtime.bigint() - start) / 1e9).toFixed(1);
}

function fmt(n) {
  return n.toLocaleString("en-US");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printResults } = await import("./report.mjs");
  const results = await run();
  printResults(results);
  if (results.some((r) => r.exitCode !== 0)) process.exitCode = 1;
}
