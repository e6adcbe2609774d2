/**
 * briefdb's Prometheus metrics, through prom-client: the database's health (up, healthy, round-trip
 * latency, migrations), the samples monitorQuery recorded in the query log (per name, a histogram
 * whose 0.5 s and 1 s buckets are the warn and slow thresholds), this process's token operations
 * (credits, deducts, holds, captures, releases) and refusals by kind, on PostgreSQL the pool's use,
 * and Node's default process metrics (process_*, nodejs_*: CPU, memory, event-loop lag). Each
 * collector has its own registry, so several can live in one process beside the app's own.
 */
import { sql } from "drizzle-orm";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { BriefDatabase } from "../../db/database.js";
import { withDeadline } from "./deadline.js";
import { checkDatabaseHealth } from "./health.js";
import { tokenCounts } from "../ledger/counters.js";

/** Seconds; 0.5 and 1 are monitorQuery's default warn and slow thresholds. */
export const QUERY_BUCKETS = [0.5, 1, 2.5, 5, 10, 30] as const;
const LOG_BATCH = 5000;
/**
 * Query names kept as their own series; later new names share `name="(other)"`. A name built from
 * an id (`user-${id}`) would otherwise grow the exposition without end (100k names: 56 MB a scrape).
 */
export const MAX_QUERY_NAMES = 200;
export const OTHER_QUERY_NAME = "(other)";

export interface MetricsCollector {
  readonly registry: Registry;
  /** Reads the database and this process's counters, then renders the exposition text. */
  scrape(): Promise<string>;
}

export interface MetricsOptions {
  /**
   * How long a scrape waits for the database (default 5000 ms). Past it the scrape answers at once
   * with briefdb_up and briefdb_healthy 0 and this process's own counters; the reads still under
   * way are not started again until they finish, so a hung database never queues scrapes.
   */
  readonly timeoutMs?: number;
}

const DEFAULT_SCRAPE_TIMEOUT_MS = 5000;

export function createMetricsCollector(db: BriefDatabase, options: MetricsOptions = {}): MetricsCollector {
  const timeoutMs = options.timeoutMs ?? DEFAULT_SCRAPE_TIMEOUT_MS;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = {
    up: new Gauge({ name: "briefdb_up", help: "1 when the database answered the last scrape's health check", registers: [registry] }),
    healthy: new Gauge({ name: "briefdb_healthy", help: "1 when the database is reachable and every migration is applied", registers: [registry] }),
    latency: new Gauge({ name: "briefdb_health_latency_seconds", help: "round trip of the health check's ping (SELECT 1)", registers: [registry] }),
    pending: new Gauge({ name: "briefdb_migrations_pending", help: "migrations not yet applied", registers: [registry] }),
    applied: new Gauge({ name: "briefdb_migrations_applied", help: "migrations applied", registers: [registry] }),
    queries: new Histogram({
      name: "briefdb_query_duration_seconds",
      help: "samples monitorQuery recorded in the query log (at or over its warn threshold), by query name",
      labelNames: ["name"],
      buckets: [...QUERY_BUCKETS],
      registers: [registry],
    }),
    queryFailures: new Counter({ name: "briefdb_query_failures_total", help: "recorded samples whose query failed, by query name", labelNames: ["name"], registers: [registry] }),
    tokens: new Counter({
      name: "briefdb_token_operations_total",
      help: "token operations in this process by operation (credit, deduct, hold, capture, release) and outcome (applied, replayed, refused, failed)",
      labelNames: ["operation", "outcome"],
      registers: [registry],
    }),
    refusals: new Counter({
      name: "briefdb_token_refusals_total",
      help: "token operations in this process refused or failed, by operation and error code",
      labelNames: ["operation", "code"],
      registers: [registry],
    }),
  };
  const pool = db.poolUse
    ? {
        max: new Gauge({ name: "briefdb_pg_pool_max", help: "the PostgreSQL pool's size", registers: [registry] }),
        connections: new Gauge({
          name: "briefdb_pg_connections",
          help: "server connections of this client (same database and application_name), by state",
          labelNames: ["state"],
          registers: [registry],
        }),
      }
    : undefined;
  let lastLogId = 0;
  const names = new Set<string>();
  const seriesName = (name: string): string => {
    if (names.has(name)) return name;
    if (names.size >= MAX_QUERY_NAMES) return OTHER_QUERY_NAME;
    names.add(name);
    return name;
  };
  /** The database reads under way; a scrape joins them rather than starting its own. */
  let reading: Promise<void> | undefined;

  async function readHealth(): Promise<boolean> {
    const report = await checkDatabaseHealth(db, { samples: 1 });
    m.up.set(report.error === null ? 1 : 0);
    m.healthy.set(report.healthy ? 1 : 0);
    if (report.latencyMs) m.latency.set(report.latencyMs.median / 1000);
    if (report.migrations) {
      m.pending.set(report.migrations.pending);
      m.applied.set(report.migrations.applied);
    }
    return report.error === null && (report.migrations?.pending ?? 1) === 0;
  }

  /** New query-log rows since the last scrape, observed once each (counters never go back). */
  async function readQueryLog(): Promise<void> {
    for (;;) {
      const rows = await db.all<{ id: number | string; name: string; duration_ms: number | string; failed: boolean | number }>(
        sql`SELECT id, name, duration_ms, failed FROM query_log WHERE id > ${lastLogId} ORDER BY id LIMIT ${LOG_BATCH}`,
      );
      for (const row of rows) {
        const name = seriesName(row.name);
        m.queries.observe({ name }, Number(row.duration_ms) / 1000);
        if (row.failed === true || row.failed === 1) m.queryFailures.inc({ name });
        lastLogId = Number(row.id);
      }
      if (rows.length < LOG_BATCH) return;
    }
  }

  function readTokenCounts(): void {
    m.tokens.reset();
    m.refusals.reset();
    for (const c of tokenCounts()) {
      m.tokens.inc({ operation: c.operation, outcome: c.outcome }, c.count);
      if (c.code !== "") m.refusals.inc({ operation: c.operation, code: c.code }, c.count);
    }
  }

  async function readPool(): Promise<void> {
    if (!pool || !db.poolUse) return;
    const use = await db.poolUse();
    pool.max.set(use.max);
    pool.connections.reset();
    for (const [state, n] of Object.entries(use.connections)) pool.connections.set({ state }, n);
  }

  async function readDatabase(): Promise<void> {
    const migrated = await readHealth();
    // what needs the schema only when it is there: a scrape never fails, it says up/healthy 0
    if (migrated) await readQueryLog().catch(() => {});
    await readPool().catch(() => {});
  }

  async function scrape(): Promise<string> {
    // one pass over the database at a time, so that two never observe the same query-log rows twice
    if (reading === undefined) {
      const pass = readDatabase()
        .catch(() => {
          m.up.set(0);
          m.healthy.set(0);
        })
        .finally(() => {
          if (reading === pass) reading = undefined;
        });
      reading = pass;
    }
    const read = await withDeadline(reading.then(() => true), timeoutMs);
    if (read === undefined) {
      // the database did not answer in time: say so, rather than last time's figures
      m.up.set(0);
      m.healthy.set(0);
    }
    readTokenCounts();
    return registry.metrics();
  }

  return { registry, scrape };
}
