// `npm run bench`: every performance figure, each script in its own process (so that one's memory
// and connections never colour another's figures), each judging ratios against baselines
// measured in the same run. Collects their figures (report.mjs writes them as JSON) and writes
// docs/performance.md with the date, the machine and its load. Exit 1 when any misses its target.
//   node bench/run-all.mjs                      # all of them; writes docs/performance.md
//   node bench/run-all.mjs startup seed         # some of them; writes no page unless --out names one
//   node bench/run-all.mjs --out /tmp/perf.md   # the page elsewhere
// Run one alone: node bench/<name>.mjs
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { describeMachine, renderPerformancePage } from "./performance-page.mjs";

const SUITES = ["startup", "tokens-sqlite", "tokens-pg", "batching", "seed", "queries", "migrate-online"];
const PAGE = fileURLToPath(new URL("../docs/performance.md", import.meta.url));

const { values, positionals: named } = parseArgs({ options: { out: { type: "string" } }, allowPositionals: true });
const out = values.out;
const unknown = named.filter((name) => !SUITES.includes(name));
if (unknown.length > 0) throw new Error(`no bench named ${unknown.join(", ")} (there are: ${SUITES.join(", ")})`);
const suites = named.length > 0 ? named : SUITES;
const page = out ?? (named.length === 0 ? PAGE : undefined);

const started = new Date();
const machine = await describeMachine();
/** @type {number[]} */
const loads = [loadavg()[0] ?? 0];
const sampler = setInterval(() => loads.push(loadavg()[0] ?? 0), 15_000);
const dir = mkdtempSync(join(tmpdir(), "briefdb-bench-results-"));
/** @type {import("./performance-page.mjs").SuiteRun[]} */
const runs = [];
try {
  for (const suite of suites) {
    console.log(`\n== bench/${suite}.mjs`);
    const file = join(dir, `${suite}.json`);
    const status = await runSuite(suite, file);
    runs.push({ suite, status, results: readResults(file) });
  }
} finally {
  clearInterval(sampler);
  rmSync(dir, { recursive: true, force: true });
}
loads.push(loadavg()[0] ?? 0);
const finished = new Date();

if (page !== undefined) {
  writeFileSync(page, renderPerformancePage({ started, finished, machine, loads, runs }));
  console.log(`\nwrote ${page}`);
}
process.exitCode = runs.every((run) => run.status === 0) ? 0 : 1;

/**
 * Runs bench/<suite>.mjs in a child process that writes its figures to `file`; its exit code.
 * @param {string} suite
 * @param {string} file
 * @returns {Promise<number>}
 */
function runSuite(suite, file) {
  const child = spawn(process.execPath, [fileURLToPath(new URL(`./${suite}.mjs`, import.meta.url))], {
    stdio: "inherit",
    env: { ...process.env, BRIEFDB_BENCH_RESULTS: file },
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/**
 * The figures a suite wrote; none when it failed before printing them.
 * @param {string} file
 * @returns {import("./report.mjs").BenchResult[]}
 */
function readResults(file) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  /** @type {(Omit<import("./report.mjs").BenchResult, "ratio"> & { ratio: number | null })[]} */
  const parsed = JSON.parse(text);
  return parsed.map((r) => ({ ...r, ratio: r.ratio ?? Number.NaN }));
}
