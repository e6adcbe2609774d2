// Prints benchmark figures: each a ratio against a baseline measured in the same run. A ratio is
// "higher is better" (throughput) unless the result says lowerIsBetter (time).

/**
 * @typedef {object} BenchResult
 * @property {string} name
 * @property {string} briefdb briefdb's figure, as printed
 * @property {string} baseline the baseline's figure, as printed
 * @property {string[]} [extra] more lines to print
 * @property {number} ratio
 * @property {number} [target] the ratio to reach; none: informative only
 * @property {boolean} [lowerIsBetter]
 */

/** @param {readonly BenchResult[]} results */
export function printResults(results) {
  for (const r of results) {
    const met = r.target === undefined ? undefined : r.lowerIsBetter ? r.ratio <= r.target : r.ratio >= r.target;
    const bound = r.target === undefined ? "" : ` (target ${r.lowerIsBetter ? "≤" : "≥"} ${r.target}×)`;
    const verdict = met === undefined ? "" : met ? "  ok" : "  MISSES TARGET";
    console.log(r.name);
    console.log(`  briefdb   ${r.briefdb}`);
    console.log(`  baseline  ${r.baseline}`);
    for (const line of r.extra ?? []) console.log(`  ${line}`);
    console.log(`  ratio     ${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : "n/a"}×${bound}${verdict}`);
    if (met === false) process.exitCode = 1;
  }
}
