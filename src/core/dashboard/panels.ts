/**
 * The dashboard's four panels as JSON (overview, ledger, queries, schema): what `GET /api/<panel>`
 * answers, for the page and for scripts. Each reads what the CLI's own commands read (health,
 * migrate --status, slow-queries, --probe, tokens verify), plus a few cheap indexed counts.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { tokenCounts, tokenLatencies } from "../ledger/counters.js";
import { verifyLedger, type VerifyReport } from "../ledger/tokens.js";
import { migrationStatus } from "../migrate/status.js";
import { probeCanonicalQueries } from "../queries/probes.js";
import { slowQueryHistograms, slowQueryReport, type BucketCounts } from "../queries/slow-queries.js";
import { isoInstant } from "../instants.js";
import { LATENCY_BUCKETS_MS } from "../stats.js";
import { LEDGER_KINDS, type LiveSampler } from "./live.js";

export async function overviewPanel(db: BriefDatabase, live: LiveSampler) {
  const health = live.lastHealth();
  return {
    sampledAt: new Date(live.lastSampledAt()).toISOString(),
    sampledEveryMs: live.intervalMs,
    healthy: health?.healthy ?? false,
    problems: health === null ? ["the first health check has not finished"] : health.problems,
    warnings: health?.warnings ?? [],
    error: health?.error ? { code: health.error.code, message: health.error.message } : null,
    dialect: db.dialect,
    target: db.target.display,
    serverVersion: health?.serverVersion ?? null,
    role: health?.error === null ? await db.inspector.serverRole().catch(() => null) : null,
    latencyMs: health?.latencyMs?.median ?? null,
    migrations: health?.migrations ?? null,
    series: live.points().map((p) => ({ t: p.t, latencyMs: p.latencyMs, healthy: p.healthy })),
  };
}

export async function ledgerPanel(db: BriefDatabase, live: LiveSampler) {
  const [active] = await db.all<{ n: number | string; tokens: number | string | null }>(
    sql`SELECT count(*) AS n, sum(amount) AS tokens FROM token_holds WHERE status = 'active'`,
  );
  const recent = await db.all<{ id: string; user_id: string; type: string; amount: number | string; reason: string; hold_id: string | null; at: number | string }>(sql`
    SELECT id, user_id, type, amount, reason, hold_id, ${db.time.epochMs(sql`created_at`)} AS at
    FROM token_transactions ORDER BY created_at DESC, id DESC LIMIT 10`);
  const points = live.points();
  return {
    sampledEveryMs: live.intervalMs,
    kinds: LEDGER_KINDS,
    series: points.map((p) => ({ t: p.t, ops: p.ops, refused: p.refused })),
    totals: windowTotals(points),
    activeHolds: { count: Number(active?.n ?? 0), tokens: Number(active?.tokens ?? 0) },
    batchSizes: await batchSizes(db, Date.now() - BATCH_WINDOW_MS),
    process: processCounts(),
    recent: recent.map((r) => ({
      id: r.id,
      userId: r.user_id,
      operation: r.type === "credit" ? "credit" : r.hold_id === null ? "deduct" : "capture",
      amount: Number(r.amount),
      reason: r.reason,
      at: isoInstant(Number(r.at)),
    })),
  };
}

function windowTotals(points: ReturnType<LiveSampler["points"]>) {
  const ops: Record<string, number> = Object.fromEntries(LEDGER_KINDS.map((k) => [k, 0]));
  const refused: Record<string, number> = {};
  for (const p of points) {
    for (const k of LEDGER_KINDS) ops[k] = (ops[k] ?? 0) + p.ops[k];
    for (const [code, n] of Object.entries(p.refused)) refused[code] = (refused[code] ?? 0) + n;
  }
  return { ops, refused };
}

/** The batch-size histogram's window: a minute of ledger rows, read on every poll. */
const BATCH_WINDOW_MS = 60_000;

/**
 * Ledger rows written at one instant since `from`, as a histogram of sizes: a batch's rows share
 * its statement's timestamp (PostgreSQL's transaction clock, SQLite's one reading per batch), so
 * this is the batch sizes as the database saw them, whichever process wrote them.
 */
async function batchSizes(db: BriefDatabase, from: number) {
  const rows = await db.all<{ size: number | string; n: number | string }>(sql`
    SELECT size, count(*) AS n FROM (
      SELECT count(*) AS size FROM token_transactions WHERE created_at >= ${db.time.fromEpochMs(from)} GROUP BY created_at
    ) sizes GROUP BY size ORDER BY size`);
  const bounds = [1, 2, 5, 10, 25, 50, 100, 250, 500];
  const counts = new Array<number>(bounds.length + 1).fill(0);
  for (const row of rows) {
    const at = bounds.findIndex((b) => Number(row.size) <= b);
    counts[at < 0 ? bounds.length : at]! += Number(row.n);
  }
  return { bounds, counts };
}

/** What this process itself did (the app, when the dashboard is mounted in it; `serve` does no token operations). */
function processCounts() {
  const outcomes = tokenCounts().map((c) => ({ operation: c.operation, outcome: c.outcome, code: c.code, count: c.count }));
  const latency = tokenLatencies().map((l) => ({ operation: l.operation, ...bucketCounts(l.counts) }));
  return { outcomes, latency };
}

function bucketCounts(counts: readonly number[]): BucketCounts {
  return { boundsMs: [...LATENCY_BUCKETS_MS], counts: [...counts] };
}

export interface VerifyRun {
  readonly ranAt: string;
  readonly durationMs: number;
  readonly report: VerifyReport;
}

export async function runVerify(db: BriefDatabase): Promise<VerifyRun> {
  const start = Date.now();
  const report = await verifyLedger(db);
  return { ranAt: new Date(start).toISOString(), durationMs: Date.now() - start, report };
}

/** The slow-query report of the last hour, a latency histogram per name, and the canonical probes. */
export async function queriesPanel(db: BriefDatabase, options: { windowMs: number; probeRuns: number }) {
  const since = new Date(Date.now() - options.windowMs);
  const report = await slowQueryReport(db, { since, limit: 20 });
  const histograms = await slowQueryHistograms(db, since, report.recorded.map((r) => r.name));
  const probes = await probeCanonicalQueries(db, { runs: options.probeRuns });
  return {
    since: since.toISOString(),
    recorded: report.recorded.map((r) => ({ ...r, lastSeen: isoInstant(r.lastSeen), histogram: histograms.get(r.name) ?? bucketCounts(new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)) })),
    names: report.names,
    statements: report.statements,
    probes: probes.map((p) => ({
      name: p.name,
      description: p.description,
      usesIndex: p.usesIndex,
      p50Ms: p.p50Ms,
      p95Ms: p.p95Ms,
      rows: p.rows,
      indexes: p.indexes,
      fullScans: p.fullScans,
      plan: p.plan,
      suggestion: p.suggestion,
    })),
  };
}

const TABLES = ["users", "briefs", "reviews", "models", "token_transactions", "token_holds", "query_log"] as const;

/** Each migration (applied when, or pending), INVALID indexes, NOT VALID constraints, table sizes. */
export async function schemaPanel(db: BriefDatabase) {
  const status = await migrationStatus(db);
  const tables = [];
  for (const table of TABLES) {
    const size = await db.schemaChanges.tableSize(table);
    if (size) tables.push({ table, rows: size.rows, estimated: size.estimated, bytes: size.bytes });
  }
  return {
    migrations: [
      ...status.applied.map((m) => ({ tag: m.tag, state: m.changed ? "changed" : "applied", appliedAt: m.appliedAt.toISOString() })),
      ...status.pending.map((m) => {
        const partial = status.partial.find((p) => p.tag === m.tag);
        return { tag: m.tag, state: partial ? "partial" : "pending", appliedAt: null, ...(partial ? { stepsDone: partial.finished.length, steps: partial.steps } : {}) };
      }),
    ],
    invalidIndexes: status.invalidIndexes,
    notValidConstraints: status.notValidConstraints,
    tables,
  };
}
