#!/usr/bin/env node
/**
 * Performance target (docs/performance.md): seeding 1,000,000 rows on SQLite must run at ≥ 0.5× a raw better-sqlite3 prepared
 * bulk insert of the same rows with the same pragmas, with a peak RSS under 300 MB; the
 * PostgreSQL figure (multi-row INSERTs) is printed beside it.
 *
 * Each measurement runs in its own child process, so its peak RSS (process.resourceUsage) is
 * its own. The raw baseline runs twice: with every row generated in memory before its clock
 * starts (so briefdb is charged for generating the data as well as writing it), and with rows
 * generated as they go (no giant heap); the ratio is against the faster of the two. All start
 * from a migrated, empty database. PostgreSQL: BRIEFDB_BENCH_PG_URL, else an embedded server on
 * loopback.
 *
 *   node bench/seed.mjs              # after `npm run build`; exit 1 when a target is missed
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createDatabase, startBenchPostgres } from "../harness/postgres.mjs";

/** @typedef {{ ms: number, cpuMs: number, rows: number, maxRssMb: number }} Measurement */

const SIZES = { users: 10_000, briefs: 100_000, reviews: 300_000, transactions: 589_988 }; // + 12 models = 1,000,000
const SEED = 1;
const RATIO_TARGET = 0.5;
const RSS_TARGET_MB = 300;

const [mode, url = ""] = process.argv.slice(2);
if (mode === "--raw") await rawChild(url, { pregenerate: true });
else if (mode === "--raw-inline") await rawChild(url, { pregenerate: false });
else if (mode === "--briefdb") await briefdbChild(url);
else await main();

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "briefdb-bench-seed-"));
  try {
    const raw = measureSqlite("--raw", join(dir, "raw.db"));
    const inline = measureSqlite("--raw-inline", join(dir, "raw-inline.db"));
    const seeded = measureSqlite("--briefdb", join(dir, "briefdb.db"));
    const pg = await withPostgres((pgUrl) => measure("--briefdb", pgUrl));
    // Against the faster baseline: a huge pre-generated heap can slow the first one down.
    const ratio = Math.min(raw.ms, inline.ms) / seeded.ms;
    console.log(`seed ${count(seeded.rows)} rows (users ${count(SIZES.users)}, briefs ${count(SIZES.briefs)}, reviews ${count(SIZES.reviews)}, ledger ${count(SIZES.transactions)}, models 12)`);
    line("SQLite raw prepared insert", raw, "rows generated before the clock starts");
    line("SQLite raw prepared insert", inline, "rows generated as they are inserted");
    line("SQLite briefdb seed", seeded, `ratio ${ratio.toFixed(2)}×`);
    line("PostgreSQL briefdb seed", pg, "multi-row INSERTs");
    const rss = (/** @type {Measurement} */ m) => ({ text: `peak RSS < ${RSS_TARGET_MB} MB (${m.maxRssMb} MB)`, met: m.maxRssMb < RSS_TARGET_MB });
    const { printResults } = await import("./report.mjs");
    printResults([
      {
        name: `seed ${count(seeded.rows)} rows, SQLite`,
        briefdb: `${count(rate(seeded))} rows/s, peak RSS ${seeded.maxRssMb} MB`,
        baseline: `${count(Math.max(rate(raw), rate(inline)))} rows/s (raw better-sqlite3 prepared insert of the same rows, the faster of two ways)`,
        ratio,
        target: RATIO_TARGET,
        checks: [rss(seeded)],
      },
      {
        name: `seed ${count(pg.rows)} rows, PostgreSQL`,
        briefdb: `${count(rate(pg))} rows/s, peak RSS ${pg.maxRssMb} MB`,
        baseline: "none",
        ratio: Number.NaN,
        checks: [rss(pg)],
      },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * @param {string} mode
 * @param {string} target
 * @returns {Measurement}
 */
function measure(mode, target) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), mode, target], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return JSON.parse(out.trim().split("\n").pop() ?? "");
}

/**
 * One SQLite run, then its files go and the disk settles, so the next run does not pay for its writeback.
 * @param {string} mode
 * @param {string} path
 */
function measureSqlite(mode, path) {
  const result = measure(mode, mode === "--briefdb" ? `file:${path}` : path);
  for (const suffix of ["", "-wal", "-shm"]) rmSync(`${path}${suffix}`, { force: true });
  execFileSync("sync");
  return result;
}

/**
 * @param {string} label
 * @param {Measurement} m
 * @param {string} note
 */
function line(label, m, note) {
  const perSec = rate(m);
  // CPU time (the whole child, set-up included) is shown because wall time swings on a shared machine.
  const cpu = `cpu ${(m.cpuMs / 1000).toFixed(1)} s`;
  console.log(`  ${label.padEnd(32)} ${(m.ms / 1000).toFixed(2).padStart(7)} s  ${count(perSec).padStart(9)} rows/s  ${cpu.padStart(10)}  peak RSS ${String(m.maxRssMb).padStart(4)} MB  ${note}`);
}

/**
 * The child that seeds through briefdb: migrate (untimed), then seedTestData (timed).
 * @param {string} target
 */
async function briefdbChild(target) {
  const { openDatabase, migrate, localModeOptimizations } = await import("briefdb");
  const db = await openDatabase(target);
  await migrate(db);
  const start = performance.now();
  const result = await localModeOptimizations.seedTestData(db, { ...SIZES, seed: SEED });
  const ms = performance.now() - start;
  await db.close();
  report(ms, result.rows);
}

/**
 * The child that inserts the same rows with better-sqlite3 alone: one prepared INSERT per table,
 * one transaction. `pregenerate`: every row is built before the clock starts. The schema comes
 * from briefdb's migrate, untimed, as in the briefdb child.
 * @param {string} path
 * @param {{ pregenerate: boolean }} options
 */
async function rawChild(path, { pregenerate }) {
  const { default: Database } = await import("better-sqlite3");
  const { openDatabase, migrate, seedTables } = await import("briefdb");
  const db = await openDatabase(`file:${path}`);
  await migrate(db);
  await db.close();
  const client = new Database(path);
  client.pragma("journal_mode = WAL");
  client.pragma("synchronous = FULL");
  client.pragma("foreign_keys = ON");
  client.pragma("busy_timeout = 15000");
  /** @param {import("briefdb").BulkRow} row */
  const asSqlite = (row) => row.map((v) => (v === true ? 1 : v === false ? 0 : v));
  const tables = seedTables(SEED, SIZES).map((table) => ({
    ...table,
    data: pregenerate ? Array.from(table.rows(), asSqlite) : { *[Symbol.iterator]() { for (const row of table.rows()) yield asSqlite(row); } },
  }));
  const start = performance.now();
  client.exec("BEGIN IMMEDIATE");
  let rows = 0;
  for (const table of tables) {
    const columns = table.columns.map((c) => `"${c.name}"`).join(", ");
    const statement = client.prepare(`INSERT INTO "${table.name}" (${columns}) VALUES (${table.columns.map(() => "?").join(", ")})`);
    for (const row of table.data) {
      statement.run(row);
      rows += 1;
    }
  }
  client.exec("COMMIT");
  const ms = performance.now() - start;
  client.close();
  report(ms, rows);
}

/**
 * @param {number} ms
 * @param {number} rows
 */
function report(ms, rows) {
  const usage = process.resourceUsage();
  const cpuMs = Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000);
  console.log(JSON.stringify({ ms: Math.round(ms), cpuMs, rows, maxRssMb: Math.round(usage.maxRSS / 1024) }));
}

/**
 * @template T
 * @param {(url: string) => T} work
 */
async function withPostgres(work) {
  const server = await startBenchPostgres();
  try {
    return await work(await createDatabase(server.url, `briefdb_bench_seed_${process.pid}`));
  } finally {
    await server.stop();
  }
}

/** @param {Measurement} m rows per second */
function rate(m) {
  return Math.round(m.rows / (m.ms / 1000));
}

/** @param {number} n */
function count(n) {
  return n.toLocaleString("en-US");
}
