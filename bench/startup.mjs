// Performance target (docs/performance.md): start-up — `briefdb --version` ≤ 2× and `briefdb health` on SQLite ≤ 3× the time of
// `node -e 0`, all timed in this one run (median of interleaved runs).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../bin/briefdb", import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 25);

/** @param {string[]} args */
function time(args) {
  const start = process.hrtime.bigint();
  execFileSync(process.execPath, args, { stdio: "ignore" });
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** @returns {Promise<import("./report.mjs").BenchResult[]>} */
export async function run() {
  const dir = mkdtempSync(join(tmpdir(), "briefdb-bench-startup-"));
  const db = `file:${join(dir, "startup.db")}`;
  execFileSync(process.execPath, [BIN, "migrate", "--db", db], { stdio: "ignore" });
  const cases = { node: ["-e", "0"], version: [BIN, "--version"], health: [BIN, "health", "--db", db] };
  /** @type {Record<keyof typeof cases, number[]>} */
  const samples = { node: [], version: [], health: [] };
  const names = /** @type {(keyof typeof cases)[]} */ (Object.keys(cases));
  try {
    for (let i = 0; i < RUNS; i++) for (const name of names) samples[name].push(time(cases[name]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const node = median(samples.node);
  const baseline = `${node.toFixed(1)} ms (node -e 0)`;
  return [
    { name: "start-up: briefdb --version", briefdb: `${median(samples.version).toFixed(1)} ms`, baseline, ratio: median(samples.version) / node, target: 2, lowerIsBetter: true },
    { name: "start-up: briefdb health (SQLite)", briefdb: `${median(samples.health).toFixed(1)} ms`, baseline, ratio: median(samples.health) / node, target: 3, lowerIsBetter: true },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printResults } = await import("./report.mjs");
  printResults(await run());
}
