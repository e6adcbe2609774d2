// A benchmark's figures: each beside a baseline measured in the same run and judged against its
// target. printResults shows them to people and, when run-all.mjs names a file in
// BRIEFDB_BENCH_RESULTS, writes them there as JSON for docs/performance.md. A ratio is "higher is
// better" (throughput) unless the result says lowerIsBetter (time).

import { writeFileSync } from "node:fs";

/**
 * @typedef {object} BenchCheck a target that is not the ratio: a bound on briefdb's own figure
 * @property {string} text the target, as a reader sees it ("p95 < 5 ms")
 * @property {boolean} met
 */

/**
 * @typedef {object} BenchResult
 * @property {string} name
 * @property {string} briefdb briefdb's figure, as printed
 * @property {string} baseline the baseline's figure, as printed
 * @property {string[]} [extra] more lines to print
 * @property {number} ratio briefdb ÷ baseline (NaN: no baseline)
 * @property {number} [target] the ratio to reach; none: the ratio is informative only
 * @property {boolean} [lowerIsBetter]
 * @property {BenchCheck[]} [checks] targets beside (or instead of) the ratio's
 */

/**
 * What the result is judged against, in words, and whether it passed (undefined: no target).
 * @param {BenchResult} r
 * @returns {{ target: string, met: boolean | undefined }}
 */
export function verdictOf(r) {
  /** @type {BenchCheck[]} */
  const all = [];
  if (r.target !== undefined) {
    const met = r.lowerIsBetter ? r.ratio <= r.target : r.ratio >= r.target;
    all.push({ text: `ratio ${r.lowerIsBetter ? "≤" : "≥"} ${r.target}×`, met });
  }
  all.push(...(r.checks ?? []));
  if (all.length === 0) return { target: "", met: undefined };
  return { target: all.map((c) => c.text).join("; "), met: all.every((c) => c.met) };
}

/** @param {number} ratio */
export function formatRatio(ratio) {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "n/a";
}

/** @param {readonly BenchResult[]} results */
export function printResults(results) {
  for (const r of results) {
    const { target, met } = verdictOf(r);
    console.log(r.name);
    console.log(`  briefdb   ${r.briefdb}`);
    console.log(`  baseline  ${r.baseline}`);
    for (const line of r.extra ?? []) console.log(`  ${line}`);
    console.log(`  ratio     ${formatRatio(r.ratio)}`);
    if (met !== undefined) console.log(`  target    ${target}: ${met ? "ok" : "MISSES TARGET"}`);
    if (met === false) process.exitCode = 1;
  }
  const file = process.env.BRIEFDB_BENCH_RESULTS;
  // NaN has no JSON: null stands for "no ratio"
  if (file) writeFileSync(file, `${JSON.stringify(results.map((r) => ({ ...r, ratio: Number.isFinite(r.ratio) ? r.ratio : null })))}\n`);
}
