/**
 * The slow-query report: the samples monitorQuery recorded, aggregated per query name, and on
 * servers that keep them the server's own costliest statements. The aggregation runs in SQL, so a
 * log of any size costs one query returning at most `limit` rows.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { dateFromEpochMs, type ServerStatement, type ServerStatements } from "../../db/inspection.js";
import { BriefdbError } from "../../errors.js";
import { assertMigrated } from "../migrate/records.js";
import { LATENCY_BUCKETS_MS, roundMs, type LatencyBucket } from "../stats.js";

export const DEFAULT_REPORT_LIMIT = 20;
const MAX_REPORT_LIMIT = 1000;

export interface SlowQueryAggregate {
  readonly name: string;
  readonly count: number;
  /** Samples whose query threw. */
  readonly failed: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  readonly lastSeen: Date;
}

export interface SlowQueryReport {
  readonly since: Date | null;
  /** Query names, slowest p95 first, at most `limit` of them. */
  readonly recorded: readonly SlowQueryAggregate[];
  /** How many names the log holds in the window (more than `recorded` when the limit cut it). */
  readonly names: number;
  /** The server's statement statistics; null where the dialect keeps none. */
  readonly statements: ServerStatements | null;
}

export interface SlowQueryReportOptions {
  /** Only samples recorded at or after this time. Default: all. */
  readonly since?: Date;
  /** Most query names (and server statements) to report, 1..1000. Default 20. */
  readonly limit?: number;
}

/** PostgreSQL returns bigint counts as strings. */
type AggregateRow = {
  name: string;
  count: number | string;
  failed: number | string;
  p50: number;
  p95: number;
  max: number;
  last_seen: number;
  names: number | string;
};

export async function slowQueryReport(db: BriefDatabase, options: SlowQueryReportOptions = {}): Promise<SlowQueryReport> {
  const limit = options.limit ?? DEFAULT_REPORT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_REPORT_LIMIT) {
    throw new BriefdbError("USAGE", `the report limit is a whole number from 1 to ${MAX_REPORT_LIMIT}, not ${limit}`);
  }
  const since = options.since ?? null;
  if (since !== null && Number.isNaN(since.getTime())) throw new BriefdbError("USAGE", "the report's since is an invalid date");
  await assertMigrated(db);
  const rows = await db.all<AggregateRow>(aggregateQuery(db, since, limit));
  const statements = await db.inspector.serverStatements(limit);
  return {
    since,
    recorded: rows.map((row) => ({
      name: row.name,
      count: Number(row.count),
      failed: Number(row.failed),
      p50Ms: roundMs(row.p50),
      p95Ms: roundMs(row.p95),
      maxMs: roundMs(row.max),
      lastSeen: dateFromEpochMs(row.last_seen),
    })),
    names: Number(rows[0]?.names ?? 0),
    statements: statements?.available ? { ...statements, statements: statements.statements.map(rounded) } : statements,
  };
}

function rounded(statement: ServerStatement): ServerStatement {
  return { ...statement, totalMs: roundMs(statement.totalMs), meanMs: roundMs(statement.meanMs) };
}

/**
 * Percentiles are nearest-rank, as stats.percentile computes them: the p-th is the sample at
 * position ⌈p·n/100⌉ in ascending order, written (p·n + 99) / 100 in integer arithmetic, which
 * both dialects share. `names` counts the groups before LIMIT cuts them.
 */
function aggregateQuery(db: BriefDatabase, since: Date | null, limit: number) {
  const window = since === null ? sql`` : sql`WHERE recorded_at >= ${db.time.fromEpochMs(since.getTime())}`;
  return sql`
    WITH ranked AS (
      SELECT name, duration_ms, failed, recorded_at,
             ROW_NUMBER() OVER (PARTITION BY name ORDER BY duration_ms) AS position,
             COUNT(*) OVER (PARTITION BY name) AS samples
      FROM query_log ${window}
    )
    SELECT name,
           MAX(samples) AS count,
           SUM(CASE WHEN failed THEN 1 ELSE 0 END) AS failed,
           MAX(CASE WHEN position = (samples * 50 + 99) / 100 THEN duration_ms END) AS p50,
           MAX(CASE WHEN position = (samples * 95 + 99) / 100 THEN duration_ms END) AS p95,
           MAX(duration_ms) AS max,
           ${db.time.epochMs(sql`MAX(recorded_at)`)} AS last_seen,
           COUNT(*) OVER () AS names
    FROM ranked
    GROUP BY name
    ORDER BY p95 DESC, name
    LIMIT ${limit}`;
}

/** A histogram over LATENCY_BUCKETS_MS: `counts[i]` samples at most `boundsMs[i]` (the last count: over the last bound). */
export interface BucketCounts {
  readonly boundsMs: readonly number[];
  readonly counts: readonly number[];
}

/** Per name, how the query log's samples since `since` (all, when null) spread over LATENCY_BUCKETS_MS: one grouped read. */
export async function slowQueryHistograms(db: BriefDatabase, since: Date | null, names: readonly string[]): Promise<Map<string, BucketCounts>> {
  const out = new Map<string, BucketCounts>();
  if (names.length === 0) return out;
  const cases = LATENCY_BUCKETS_MS.map((bound, i) => sql`WHEN duration_ms <= ${bound} THEN ${i}`);
  const window = since === null ? sql`` : sql`recorded_at >= ${db.time.fromEpochMs(since.getTime())} AND`;
  const rows = await db.all<{ name: string; bucket: number | string; n: number | string }>(sql`
    SELECT name, CASE ${sql.join(cases, sql` `)} ELSE ${LATENCY_BUCKETS_MS.length} END AS bucket, count(*) AS n
    FROM query_log
    WHERE ${window} name IN (${sql.join(names.map((n) => sql`${n}`), sql`, `)})
    GROUP BY 1, 2`);
  for (const row of rows) {
    const counts = [...(out.get(row.name)?.counts ?? new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0))];
    counts[Number(row.bucket)] = Number(row.n);
    out.set(row.name, { boundsMs: [...LATENCY_BUCKETS_MS], counts });
  }
  return out;
}

/** The histogram's buckets from the first to the last that holds a sample (race-test's latencyHistogram shape). */
export function trimmedBuckets(histogram: BucketCounts | undefined): LatencyBucket[] {
  if (!histogram) return [];
  const buckets = histogram.counts.map((count, i) => ({ leMs: histogram.boundsMs[i] ?? null, count }));
  const first = buckets.findIndex((b) => b.count > 0);
  if (first < 0) return [];
  let last = buckets.length - 1;
  while (buckets[last]!.count === 0) last--;
  return buckets.slice(first, last + 1);
}
