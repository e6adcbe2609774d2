/**
 * What the dashboard charts over time, sampled by the server itself every few seconds: the health
 * check's round trip, token operations per kind read from the database (ledger rows by their
 * timestamp; holds by their time-ordered ids), and what only the running process can count
 * (releases, refusals by code). A ring of the last `points` samples; each tick recounts the last
 * few buckets, so a transaction that committed after its bucket was first counted is not lost.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { tokenCounts } from "../ledger/counters.js";
import { HOLD_ID_PREFIX } from "../ledger/hold-input.js";
import { checkDatabaseHealth, failedHealthReport, type HealthReport } from "../health/health.js";
import { noAnswerError, withDeadline } from "../health/deadline.js";

export const LEDGER_KINDS = ["credit", "deduct", "hold", "capture", "release"] as const;
export type LedgerKind = (typeof LEDGER_KINDS)[number];

export interface LivePoint {
  /** The bucket's end, epoch ms. */
  readonly t: number;
  /** The health check's round trip at that tick (null: the database did not answer). */
  readonly latencyMs: number | null;
  readonly healthy: boolean | null;
  /** Operations in the bucket, per kind. */
  readonly ops: Record<LedgerKind, number>;
  /** Refusals in the bucket by error code (counted by this process). */
  readonly refused: Record<string, number>;
}

export interface LiveOptions {
  /** Milliseconds between samples; default 5000. */
  readonly intervalMs?: number;
  /** Samples kept; default 120 (10 minutes at 5 s). */
  readonly points?: number;
  /**
   * How long a read may take before it is answered as "no answer" (DB_UNREACHABLE): a tick's
   * health check and counts, and (in the dashboard) a panel's read; default 5000 ms.
   */
  readonly timeoutMs?: number;
}

export interface LiveSampler {
  readonly intervalMs: number;
  /** The samples, oldest first. */
  points(): readonly LivePoint[];
  /** The last health report (null before the first tick finished). */
  lastHealth(): HealthReport | null;
  /** When the last tick finished, epoch ms (0 before). */
  lastSampledAt(): number;
  /** Starts sampling (a first tick at once) unless it runs; the first start fills the op buckets of the window from the database. */
  start(): Promise<void>;
  /** Takes a sample now (after the one under way, if any): what was written before the call is counted. */
  sample(): Promise<void>;
  stop(): void;
}

/** Buckets recounted each tick: a row's timestamp is its transaction's start, which may commit seconds later. */
const RECOUNT = 3;

export function createLiveSampler(db: BriefDatabase, options: LiveOptions = {}): LiveSampler {
  const intervalMs = options.intervalMs ?? 5000;
  const size = options.points ?? 120;
  const timeoutMs = options.timeoutMs ?? 5000;
  const ring: LivePoint[] = [];
  let health: HealthReport | null = null;
  let sampledAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let starting: Promise<void> | undefined;
  let lastRefused = refusalTotals();
  let lastReleases = releaseTotal();

  async function tick(): Promise<void> {
    // the bucket now under way: counted at once, recounted by the next ticks until it is done
    const end = (Math.floor(Date.now() / intervalMs) + 1) * intervalMs;
    const report = await withDeadline(checkDatabaseHealth(db, { samples: 1 }), timeoutMs);
    // a check with no answer is a failed one, said as such (not "not checked yet")
    health = report ?? failedHealthReport({ dialect: db.dialect, target: db.target.display, samples: 1 }, noAnswerError(timeoutMs));
    const migrated = report !== undefined && report.error === null && report.migrations?.pending === 0;
    const refusedNow = refusalTotals();
    const releasesNow = releaseTotal();
    const refused = difference(refusedNow, lastRefused);
    const releases = releasesNow - lastReleases;
    lastRefused = refusedNow;
    lastReleases = releasesNow;
    const latencyMs = report?.latencyMs?.median ?? null;
    const healthy = report?.healthy ?? null;
    const previous = ring[ring.length - 1];
    if (previous === undefined || previous.t < end) {
      ring.push({ t: end, latencyMs, healthy, ops: { ...emptyOps(), release: releases }, refused });
    } else {
      // another tick in the same bucket: its refusals and releases add to the bucket's
      const merged = { ...previous.refused };
      for (const [code, n] of Object.entries(refused)) merged[code] = (merged[code] ?? 0) + n;
      ring[ring.length - 1] = { ...previous, latencyMs, healthy, refused: merged, ops: { ...previous.ops, release: previous.ops.release + releases } };
    }
    // bounded: a tick stuck on a database that stopped answering would stop the sampling with it
    if (migrated) await withDeadline(recount(), timeoutMs);
    while (ring.length > size) ring.shift();
    sampledAt = Date.now();
  }

  /** Recounts the last buckets; each written back by its time, so a recount that ends late changes only its own buckets. */
  async function recount(): Promise<void> {
    for (const { t } of ring.slice(-RECOUNT)) {
      const ops = await countOps(db, t - intervalMs, t).catch(() => undefined);
      const at = ring.findIndex((p) => p.t === t);
      if (ops && at >= 0) ring[at] = { ...ring[at]!, ops: { ...ops, release: ring[at]!.ops.release } };
    }
  }

  /** The window's op buckets from the database, before the first latency sample (which only the server can take). */
  async function backfill(): Promise<LivePoint[]> {
    const end = (Math.floor(Date.now() / intervalMs) + 1) * intervalMs;
    const points: LivePoint[] = [];
    for (let t = end - (size - 1) * intervalMs; t < end; t += intervalMs) {
      const ops = await countOps(db, t - intervalMs, t);
      points.push({ t, latencyMs: null, healthy: null, ops: { ...ops, release: 0 }, refused: {} });
    }
    return points;
  }

  const guarded = () => {
    if (running) return running;
    running = tick()
      .catch(() => {})
      .finally(() => (running = undefined));
    return running;
  };

  return {
    intervalMs,
    points: () => ring,
    lastHealth: () => health,
    lastSampledAt: () => sampledAt,
    start() {
      // every caller waits for the first sample: the overview never answers before it
      starting ??= (async () => {
        timer = setInterval(() => void guarded(), intervalMs);
        timer.unref();
        if (ring.length === 0) {
          const report = await withDeadline(checkDatabaseHealth(db, { samples: 1 }), timeoutMs);
          const migrated = report?.error === null && report.migrations?.pending === 0;
          const filled = migrated ? await withDeadline(backfill().catch(() => undefined), timeoutMs) : undefined;
          if (filled !== undefined && ring.length === 0) ring.push(...filled);
        }
        await guarded();
      })();
      return starting;
    },
    async sample() {
      await running;
      await guarded();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      starting = undefined;
    },
  };
}

function emptyOps(): Record<LedgerKind, number> {
  return { credit: 0, deduct: 0, hold: 0, capture: 0, release: 0 };
}

/**
 * Operations in [from, to): ledger rows through the created_at index, holds through their ids
 * (`hold_` and a UUIDv7, whose first 48 bits are the creation time: the primary key is a time
 * index). Releases are not in any index by time; the process counts its own.
 */
async function countOps(db: BriefDatabase, from: number, to: number): Promise<Record<LedgerKind, number>> {
  const rows = await db.all<{ kind: string; n: number | string }>(sql`
    SELECT CASE WHEN type = 'credit' THEN 'credit' WHEN hold_id IS NULL THEN 'deduct' ELSE 'capture' END AS kind, count(*) AS n
    FROM token_transactions
    WHERE created_at >= ${db.time.fromEpochMs(from)} AND created_at < ${db.time.fromEpochMs(to)}
    GROUP BY 1`);
  const [holds] = await db.all<{ n: number | string }>(
    sql`SELECT count(*) AS n FROM token_holds WHERE id >= ${holdIdAt(from)} AND id < ${holdIdAt(to)}`,
  );
  const ops = emptyOps();
  for (const row of rows) if (row.kind in ops) ops[row.kind as LedgerKind] = Number(row.n);
  ops.hold = Number(holds?.n ?? 0);
  return ops;
}

/** The smallest hold id made at epoch ms `ms` (ids are `hold_` + UUIDv7, lowercase). */
export function holdIdAt(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, "0");
  return `${HOLD_ID_PREFIX}${hex.slice(0, 8)}-${hex.slice(8, 12)}`;
}

function refusalTotals(): Map<string, number> {
  const totals = new Map<string, number>();
  for (const c of tokenCounts()) if (c.outcome === "refused") totals.set(c.code, (totals.get(c.code) ?? 0) + c.count);
  return totals;
}

function releaseTotal(): number {
  return tokenCounts()
    .filter((c) => c.operation === "release" && c.outcome === "applied")
    .reduce((sum, c) => sum + c.count, 0);
}

function difference(now: Map<string, number>, before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [code, n] of now) if (n - (before.get(code) ?? 0) > 0) out[code] = n - (before.get(code) ?? 0);
  return out;
}
