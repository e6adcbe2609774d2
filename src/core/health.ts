/**
 * checkDatabaseHealth: connectivity, round-trip latency over a number of samples, server version,
 * migration state and indexes left INVALID by an interrupted build. A health report is a value:
 * unreachable or behind is `healthy: false` with the reasons, never a throw.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../db/database.js";
import type { DialectName } from "../db/target.js";
import type { BriefdbError } from "../errors.js";
import { toBriefdbError } from "./failures.js";
import { migrationStatus } from "./migrations.js";
import { elapsedMs, summarizeLatency, type LatencySummary } from "./stats.js";

export interface HealthReport {
  readonly healthy: boolean;
  readonly dialect: DialectName;
  readonly target: string;
  readonly serverVersion: string | null;
  readonly latencyMs: LatencySummary | null;
  readonly samples: number;
  readonly migrations: { readonly applied: number; readonly pending: number } | null;
  /** Indexes left INVALID by an interrupted or failed build (`migrate` rebuilds them). */
  readonly invalidIndexes: readonly string[] | null;
  /** Why the database is unhealthy; empty when healthy. */
  readonly problems: readonly string[];
  /** The failure that made it unreachable or erroring, when there was one. */
  readonly error: BriefdbError | null;
}

export async function checkDatabaseHealth(db: BriefDatabase, options: { samples?: number } = {}): Promise<HealthReport> {
  const samples = Math.max(1, options.samples ?? 5);
  const base = { dialect: db.dialect, target: db.target.display, samples };
  try {
    const serverVersion = await db.serverVersion();
    const latencyMs = summarizeLatency(await sampleLatency(db, samples));
    const status = await migrationStatus(db);
    const migrations = { applied: status.applied.length, pending: status.pending.length };
    const changed = status.applied.filter((m) => m.changed).map((m) => m.tag);
    const problems = [
      ...(migrations.pending > 0 ? [`${migrations.pending} migration(s) pending: run \`briefdb migrate\``] : []),
      ...(changed.length > 0 ? [`applied migration(s) ${changed.join(", ")} differ from their files`] : []),
      ...status.invalidIndexes.map((i) => `index ${i.index} on ${i.table} is INVALID (an interrupted build): run \`briefdb migrate\``),
    ];
    const invalidIndexes = status.invalidIndexes.map((i) => i.index);
    return { ...base, healthy: problems.length === 0, serverVersion, latencyMs, migrations, invalidIndexes, problems, error: null };
  } catch (caught) {
    const error = toBriefdbError(caught, db);
    return {
      ...base,
      healthy: false,
      serverVersion: null,
      latencyMs: null,
      migrations: null,
      invalidIndexes: null,
      problems: [error.message],
      error,
    };
  }
}

async function sampleLatency(db: BriefDatabase, samples: number): Promise<number[]> {
  const ping = sql`SELECT 1 AS ok`;
  const timings: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = process.hrtime.bigint();
    await db.all(ping);
    timings.push(elapsedMs(start));
  }
  return timings;
}
