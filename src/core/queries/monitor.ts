/**
 * monitorQuery, the app's query performance monitoring: times a unit of work, warns
 * in development when it is slow, and records slow samples in the database's query log, which
 * `briefdb slow-queries` reads. Monitoring must never change what the caller sees: the result and
 * the error pass through untouched, and the log is written in the background, so a slow or broken
 * database costs the caller nothing; the database's close() waits for the writes still pending.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { backgroundWritesOf } from "../../db/background-writes.js";
import { rootMessage } from "../../db/driver-errors.js";
import { isProductionEnvironment } from "../../db/target.js";
import { BriefdbError, firstLine } from "../../errors.js";
import { elapsedMs, roundMs } from "../stats.js";

export const DEFAULT_WARN_MS = 500;
export const DEFAULT_SLOW_MS = 1000;

/** Receives each warning line; console.warn unless the caller injects its own. */
export type MonitorLogger = (message: string) => void;

export interface MonitorOptions {
  /** Samples at or over this many ms are warned about and recorded. Default 500. */
  readonly warnMs?: number;
  /** Samples at or over this many ms are flagged as slow. Default 1000. */
  readonly slowMs?: number;
  /** Records samples at or over warnMs in this database's query log. */
  readonly db?: BriefDatabase;
  readonly logger?: MonitorLogger;
}

interface Sample {
  readonly name: string;
  readonly durationMs: number;
  readonly failed: boolean;
  readonly recordedAt: number;
}

/** Log writes not yet settled, so that callers can wait for them before closing the database. */
const pendingWrites = new Set<Promise<void>>();

/**
 * Runs `fn` and returns its result, or rethrows its error unchanged. A sample at or over warnMs
 * is reported to the logger (except under NODE_ENV=production) and, with `db`, recorded in its
 * query log, failed or not.
 */
export async function monitorQuery<T>(name: string, fn: () => Promise<T> | T, options: MonitorOptions = {}): Promise<T> {
  const { warnMs, slowMs } = thresholdsOf(name, options);
  const start = process.hrtime.bigint();
  let failed = false;
  try {
    return await fn();
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    const sample = { name, durationMs: roundMs(elapsedMs(start)), failed, recordedAt: Date.now() };
    if (sample.durationMs >= warnMs) {
      const logger = options.logger ?? consoleWarn;
      if (!isProductionEnvironment()) say(logger, describe(sample, warnMs, slowMs));
      if (options.db) record(options.db, sample, logger);
    }
  }
}

/** Resolves when every sample monitorQuery has begun to record is written or has failed. */
export async function flushQueryLog(): Promise<void> {
  while (pendingWrites.size > 0) await Promise.all(pendingWrites);
}

function thresholdsOf(name: string, options: MonitorOptions): { warnMs: number; slowMs: number } {
  const warnMs = options.warnMs ?? DEFAULT_WARN_MS;
  const slowMs = options.slowMs ?? DEFAULT_SLOW_MS;
  if (typeof name !== "string" || name.trim() === "") throw new BriefdbError("USAGE", "monitorQuery needs a query name");
  for (const [label, value] of [["warnMs", warnMs], ["slowMs", slowMs]] as const) {
    if (!Number.isFinite(value) || value < 0) {
      throw new BriefdbError("USAGE", `monitorQuery ${label} must be a number of milliseconds ≥ 0, not ${value}`);
    }
  }
  if (warnMs > slowMs) throw new BriefdbError("USAGE", `monitorQuery warnMs (${warnMs}) must not exceed slowMs (${slowMs})`);
  return { warnMs, slowMs };
}

function describe(sample: Sample, warnMs: number, slowMs: number): string {
  const outcome = sample.failed ? " and failed" : "";
  return sample.durationMs >= slowMs
    ? `[briefdb] slow query "${sample.name}" took ${sample.durationMs} ms${outcome} (slow at ≥ ${slowMs} ms)`
    : `[briefdb] query "${sample.name}" took ${sample.durationMs} ms${outcome} (warn at ≥ ${warnMs} ms)`;
}

/** Writes the sample after the caller has moved on; a failure is reported, never thrown. */
function record(db: BriefDatabase, sample: Sample, logger: MonitorLogger): void {
  const write = new Promise<void>((resolve) => setImmediate(resolve))
    .then(() =>
      db.run(
        sql`INSERT INTO query_log (name, duration_ms, failed, recorded_at)
            VALUES (${sample.name}, ${sample.durationMs}, ${sql.raw(sample.failed ? "TRUE" : "FALSE")}, ${db.time.fromEpochMs(sample.recordedAt)})`,
      ),
    )
    .then(
      () => undefined,
      (error: unknown) =>
        say(logger, `[briefdb] could not record query "${sample.name}" in the query log: ${firstLine(rootMessage(error))}`),
    );
  pendingWrites.add(write);
  void write.finally(() => pendingWrites.delete(write));
  // close() waits for it, so that closing right after a monitored call does not lose the sample
  backgroundWritesOf(db).track(write);
}

/** A logger that throws must not turn a monitored success into a failure. */
function say(logger: MonitorLogger, message: string): void {
  try {
    logger(message);
  } catch {
    // The message is lost; the caller's result is not.
  }
}

function consoleWarn(message: string): void {
  console.warn(message);
}
