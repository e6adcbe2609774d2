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

/** Upper bounds (ms) of the latency histogram's buckets: roughly ×2 apart, from 0.1 ms to 10 s. */
export const LATENCY_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10_000] as const;

/** One bucket of a latency histogram: samples over the previous bound and at most `leMs` (null: over the last bound). */
export interface LatencyBucket {
  readonly leMs: number | null;
  readonly count: number;
}

/**
 * How samples spread over LATENCY_BUCKETS_MS, without the empty buckets at either end: the shape a
 * p50 of 0.4 ms beside a p99 of 348 ms hides (most fast, a few behind a lock or a start-up).
 */
export function latencyHistogram(values: readonly number[]): LatencyBucket[] {
  const counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  for (const value of values) {
    const at = LATENCY_BUCKETS_MS.findIndex((bound) => value <= bound);
    counts[at < 0 ? LATENCY_BUCKETS_MS.length : at]! += 1;
  }
  const first = counts.findIndex((count) => count > 0);
  if (first < 0) return [];
  const last = counts.length - 1 - [...counts].reverse().findIndex((count) => count > 0);
  return counts.slice(first, last + 1).map((count, i) => ({ leMs: LATENCY_BUCKETS_MS[first + i] ?? null, count }));
}

/** Milliseconds to three decimals: microsecond resolution, no float noise in JSON. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Milliseconds elapsed since a process.hrtime.bigint() reading. */
export function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}
