/** Summaries of timing samples, shared by health, race-test and the slow-query report. */

export interface LatencySummary {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export interface PercentileSummary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** The p-th percentile (0..100) of ascending values, nearest-rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

export function summarizeLatency(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median =
    sorted.length % 2 === 1
      ? (sorted[Math.floor(middle)] ?? 0)
      : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { min: roundMs(sorted[0] ?? 0), median: roundMs(median), max: roundMs(sorted[sorted.length - 1] ?? 0) };
}

export function summarizePercentiles(values: readonly number[]): PercentileSummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: roundMs(percentile(sorted, 50)),
    p95: roundMs(percentile(sorted, 95)),
    p99: roundMs(percentile(sorted, 99)),
    max: roundMs(sorted[sorted.length - 1] ?? 0),
  };
}

/** Milliseconds to three decimals: microsecond resolution, no float noise in JSON. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Milliseconds elapsed since a process.hrtime.bigint() reading. */
export function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}
