/**
 * checkDatabaseHealth: connectivity, round-trip latency over a number of samples, server version,
 * migration state, indexes left INVALID by an interrupted build, constraints left NOT VALID (a
 * warning unless a pending migration validates them: then that migration is the problem), and with `deep` the stored
 * data's integrity as far as the dialect can tell cheaply. A health report is a value:
 * unreachable, behind or damaged is `healthy: false` with the reasons, never a throw. A report
 * never claims an integrity it did not check.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase, IntegrityCheck } from "../../db/database.js";
import type { DialectName } from "../../db/target.js";
import type { BriefdbError } from "../../errors.js";
import { toBriefdbError } from "../failures.js";
import { invalidIndexAdvice } from "../migrate/plan.js";
import { migrationNotes, migrationStatus, type NotValidConstraintStatus } from "../migrate/status.js";
import { elapsedMs, summarizeLatency, type LatencySummary } from "../stats.js";
import { judgeReplication, type ReplicationJudgement, type RoleRequirement, type ServerRole } from "./replication.js";
import type { Replication } from "../../db/inspection.js";

export interface HealthReport {
  readonly healthy: boolean;
  readonly dialect: DialectName;
  readonly target: string;
  readonly serverVersion: string | null;
  /** primary or standby (PostgreSQL), embedded (SQLite); null when the server could not be reached. */
  readonly role: ServerRole | null;
  /** The URL's host this check reached ("db2:5432"); null on SQLite, over a Unix socket, or unreached. */
  readonly server: string | null;
  /** The primary's standbys, or the standby's lag and upstream (docs/failover.md); null on SQLite or unreached. */
  readonly replication: Replication | null;
  readonly latencyMs: LatencySummary | null;
  readonly samples: number;
  readonly migrations: { readonly applied: number; readonly pending: number } | null;
  /** Indexes left INVALID by an interrupted or failed build (`migrate` rebuilds them). */
  readonly invalidIndexes: readonly string[] | null;
  /**
   * Constraints NOT VALID in the catalog: existing rows never checked against them. Unhealthy only
   * through the pending migration that validates one; otherwise a warning.
   */
  readonly notValidConstraints: readonly NotValidConstraintStatus[] | null;
  readonly integrity: IntegrityStatus;
  /** Why the database is unhealthy; empty when healthy. */
  readonly problems: readonly string[];
  /** Worth a look, but no reason to call it unhealthy: a constraint NOT VALID that no pending migration validates. */
  readonly warnings: readonly string[];
  /** The failure that made it unreachable or erroring, when there was one. */
  readonly error: BriefdbError | null;
}

/** Whether the stored data was checked for damage, how, and what was found. */
export interface IntegrityStatus {
  readonly checked: boolean;
  /** true or false when checked; null when not. */
  readonly ok: boolean | null;
  /** The check that ran ("pragma quick_check"), or null. */
  readonly method: string | null;
  /** "ok", what was found, or why nothing was checked ("not checked (use --deep)"). */
  readonly detail: string;
  /** What was found damaged; empty unless ok is false. */
  readonly problems: readonly string[];
  /** What to do about the damage. */
  readonly hint: string | null;
}

export interface HealthOptions {
  /** Round trips to time. Default 5. */
  readonly samples?: number;
  /** Also check the stored data's integrity (slower: SQLite reads every page). */
  readonly deep?: boolean;
  /** Unhealthy unless the server is this: a primary, a standby, or a primary with a synchronous standby streaming ("sync"). */
  readonly require?: RoleRequirement;
}

/** How the problem of edited applied migrations begins (the CLI reads it as INVARIANT_VIOLATED). */
export const CHANGED_MIGRATIONS = "applied migration(s) ";

export const INTEGRITY_NOT_CHECKED = "not checked (use --deep)";

const notChecked: IntegrityStatus = {
  checked: false,
  ok: null,
  method: null,
  detail: INTEGRITY_NOT_CHECKED,
  problems: [],
  hint: null,
};

export async function checkDatabaseHealth(db: BriefDatabase, options: HealthOptions = {}): Promise<HealthReport> {
  const samples = Math.max(1, options.samples ?? 5);
  const base = { dialect: db.dialect, target: db.target.display, samples };
  let integrity = notChecked;
  try {
    const serverVersion = await db.serverVersion();
    const latencyMs = summarizeLatency(await sampleLatency(db, samples));
    const status = await migrationStatus(db);
    const migrations = { applied: status.applied.length, pending: status.pending.length };
    const changed = status.applied.filter((m) => m.changed).map((m) => m.tag);
    if (options.deep === true) integrity = integrityStatus(await db.checkIntegrity());
    const notes = migrationNotes(status);
    const roles = await replicationOf(db, options.require);
    const problems = [
      ...roles.problems,
      ...integrity.problems.map((problem) => `the stored data is damaged: ${problem}`),
      ...(migrations.pending > 0 ? [`${migrations.pending} migration(s) pending`, ...notes.pending] : []),
      ...(changed.length > 0 ? [`${CHANGED_MIGRATIONS}${changed.join(", ")} differ from their files`] : []),
      ...status.invalidIndexes.map((i) => `index ${i.index} on ${i.table} is INVALID (an interrupted build): ${invalidIndexAdvice(i.briefdb)}`),
    ];
    const invalidIndexes = status.invalidIndexes.map((i) => i.index);
    return {
      ...base,
      healthy: problems.length === 0,
      serverVersion,
      role: roles.role,
      server: roles.server,
      replication: roles.replication,
      latencyMs,
      migrations,
      invalidIndexes,
      notValidConstraints: status.notValidConstraints,
      integrity,
      problems,
      warnings: [...roles.warnings, ...notes.notValid],
      error: null,
    };
  } catch (caught) {
    return failedHealthReport(base, toBriefdbError(caught, db), integrity);
  }
}

/**
 * The report of a database that could not be checked (unreachable, unopenable, erroring): the same
 * shape as any report, so that a script reading `healthy` never finds it missing.
 */
export function failedHealthReport(
  base: { readonly dialect: DialectName; readonly target: string; readonly samples: number },
  error: BriefdbError,
  integrity: IntegrityStatus = notChecked,
): HealthReport {
  return {
    ...base,
    healthy: false,
    serverVersion: null,
    role: null,
    server: null,
    replication: null,
    latencyMs: null,
    migrations: null,
    invalidIndexes: null,
    notValidConstraints: null,
    integrity,
    problems: [error.message],
    warnings: [],
    error,
  };
}

/** The role and its judgement; a server that will not say (a managed service's restriction) is a warning, not a failure. */
async function replicationOf(db: BriefDatabase, require: RoleRequirement | undefined): Promise<ReplicationJudgement> {
  try {
    const replication = await db.inspector.replication();
    // on a primary: is another server of the list a primary too (asked only then: a standby's
    // health needs no other server)
    const primaries = replication?.role === "primary" ? await db.inspector.listedPrimaries().catch(() => null) : null;
    return judgeReplication(replication, db.target, require, primaries);
  } catch (error) {
    const reason = toBriefdbError(error, db).message;
    if (require !== undefined) {
      return { role: null, server: null, replication: null, problems: [`--require ${require}: cannot read the server's role: ${reason}`], warnings: [] };
    }
    return { role: null, server: null, replication: null, problems: [], warnings: [`cannot read the server's replication state: ${reason}`] };
  }
}

function integrityStatus(check: IntegrityCheck): IntegrityStatus {
  if (check.method === null) {
    return { ...notChecked, detail: `not checked: ${check.note ?? "the database offers no cheap check"}` };
  }
  const ok = check.problems.length === 0;
  return {
    checked: true,
    ok,
    method: check.method,
    detail: ok ? "ok" : `${check.problems.length} problem(s) found`,
    problems: check.problems,
    hint: ok ? null : (check.hint ?? null),
  };
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
