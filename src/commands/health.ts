/**
 * `briefdb health`: connectivity, latency, server version and migration state, and with --deep the
 * stored data's integrity; exit 1 when unhealthy.
 */
import { Command } from "commander";
import { CHANGED_MIGRATIONS, type HealthReport } from "../core/health/health.js";
import { parseRoleRequirement, type RoleRequirement } from "../core/health/replication.js";
import { migrateHint } from "../core/migrate/hint.js";
import { isSharedTarget, type Target } from "../db/target.js";
import { BriefdbError } from "../errors.js";
import { formatBytes, keyValues, progressLine, startSpinner, type Outcome, type Ui } from "../render.js";
import { action, type Context } from "./context.js";
import { duration, wholeNumber } from "./parse.js";


export function healthCommand(): Command {
  return new Command("health")
    .description("check connectivity, round-trip latency, server version and migrations; exit 1 when unhealthy")
    .option("--samples <n>", "round trips to time", wholeNumber("--samples", 1, 10_000), 5)
    .option("--deep", "also check the stored data for damage (SQLite: pragma quick_check, which reads every page; PostgreSQL: data-checksum failures)")
    .option("--require <role>", "unhealthy unless the server is this: primary (takes writes), standby, or sync (a primary with a synchronous standby streaming)", parseRoleRequirement)
    .option("--wait <duration>", "retry until healthy or this long has passed (30s, 2m): a CI gate for a database starting beside the job", duration("--wait"))
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb health
  $ briefdb health --samples 50 --json
  $ briefdb health --deep                             # integrity too; plain health does not check it
  $ DATABASE_URL=postgres://me@localhost:5432/briefs briefdb health --timeout 2000
  $ briefdb health --wait 60s            # CI: waits for the database to come up and be migrated
  $ briefdb health --require primary --json   # a gate: exit 1 on a standby (docs/failover.md)`,
    )
    .action(
      action(async (ctx, options: { samples: number; deep?: boolean; wait?: number; require?: RoleRequirement }) => {
        const deep = options.deep === true;
        const checks = { samples: options.samples, deep, ...(options.require === undefined ? {} : { require: options.require }) };
        if (options.wait !== undefined) return waitedOutcome(ctx, checks, options.wait);
        const { checkDatabaseHealth, failedHealthReport } = await import("../core/health/health.js");
        let db;
        try {
          db = await ctx.open();
        } catch (error) {
          // a file that cannot be opened is reported as any unreachable database is: the whole report
          if (!(error instanceof BriefdbError) || error.exitCode !== 1) throw error;
          const base = { dialect: ctx.target.dialect, target: ctx.target.display, samples: options.samples };
          return healthOutcome(failedHealthReport(base, error), ctx.target);
        }
        return healthOutcome(await checkDatabaseHealth(db, checks), ctx.target);
      }),
    );
}

function healthOutcome(report: HealthReport, target: Target): Outcome {
  const error = report.error ?? (report.healthy ? undefined : unhealthyError(report, target));
  return {
    ok: report.healthy,
    ...(error ? { error } : {}),
    data: {
      healthy: report.healthy,
      dialect: report.dialect,
      target: report.target,
      serverVersion: report.serverVersion,
      role: report.role,
      server: report.server,
      replication: report.replication,
      latencyMs: report.latencyMs,
      samples: report.samples,
      migrations: report.migrations,
      invalidIndexes: report.invalidIndexes,
      notValidConstraints: report.notValidConstraints,
      integrity: {
        checked: report.integrity.checked,
        ok: report.integrity.ok,
        method: report.integrity.method,
        detail: report.integrity.detail,
      },
      problems: report.problems,
      warnings: report.warnings,
    },
    human: (ui) => {
      const state = report.healthy ? ui.colors.green("healthy") : ui.colors.red("unhealthy");
      const latency = report.latencyMs
        ? `min ${report.latencyMs.min} ms · median ${report.latencyMs.median} ms · max ${report.latencyMs.max} ms (${report.samples} samples)`
        : "—";
      const migrations = report.migrations ? `${report.migrations.applied} applied, ${report.migrations.pending} pending` : "—";
      return keyValues(ui, [
        ["status", state],
        ["dialect", report.dialect],
        ["target", report.target],
        ["server", serverLine(report)],
        ...replicationRow(report),
        ["latency", latency],
        ["migrations", migrations],
        ["integrity", integrityLine(ui, report)],
        ...((report.invalidIndexes?.length ?? 0) > 0 ? [["indexes", ui.colors.red(`INVALID: ${report.invalidIndexes?.join(", ")}`)] as const] : []),
        ...notValidRow(ui, report),
        ...report.warnings.map((warning) => ["warning", ui.colors.yellow(warning)] as const),
      ]);
    },
  };
}

function serverLine(report: HealthReport): string {
  if (report.serverVersion === null) return "—";
  if (report.role === null || report.role === "embedded") return report.serverVersion;
  return `${report.serverVersion} · ${report.role}${report.server === null ? "" : ` at ${report.server}`}`;
}

function replicationRow(report: HealthReport): Array<readonly [string, string]> {
  const replication = report.replication;
  if (replication === null) return [];
  if (replication.role === "standby") {
    const from = replication.receiving ? `streaming from ${replication.upstream ?? "its primary"}` : "not receiving from a primary";
    return [["replication", `${from} · ${lag(replication.replayLagBytes, replication.replayLagSeconds)} (replayed)`]];
  }
  if (replication.standbys.length === 0) return [["replication", "no standby connected"]];
  const standbys = replication.standbys.map((s) => `${s.name} ${s.syncState}, ${s.state}, ${lag(s.lagBytes, s.replayLagSeconds)}`);
  const count = replication.standbys.length;
  return [["replication", `${count} ${count === 1 ? "standby" : "standbys"}: ${standbys.join("; ")}`]];
}

function lag(bytes: number | null, seconds: number | null): string {
  const parts = [...(bytes === null ? [] : [formatBytes(bytes)]), ...(seconds === null ? [] : [`${seconds < 10 ? seconds.toFixed(2) : Math.round(seconds)} s`])];
  return parts.length === 0 ? "lag unknown" : `${parts.join(", ")} behind`;
}

function notValidRow(ui: Ui, report: HealthReport): Array<readonly [string, string]> {
  const constraints = report.notValidConstraints ?? [];
  if (constraints.length === 0) return [];
  return [["constraints", ui.colors.yellow(`NOT VALID: ${constraints.map((c) => `${c.constraint} on ${c.table}`).join(", ")}`)]];
}

function integrityLine(ui: Ui, report: HealthReport): string {
  const { integrity } = report;
  if (integrity.ok === true) return ui.colors.green(`ok (${integrity.method})`);
  if (integrity.ok === false) return ui.colors.red(`${integrity.detail} (${integrity.method})`);
  return ui.colors.dim(integrity.detail);
}

/** Reachable but unhealthy: the data is damaged, or the schema is behind its migrations or differs from them. */
function unhealthyError(report: HealthReport, target: Target): BriefdbError {
  const message = report.problems.join("; ");
  if (report.integrity.ok === false) {
    return new BriefdbError("DB_ERROR", message, report.integrity.hint ?? "restore the database from a backup");
  }
  if ((report.migrations?.pending ?? 0) > 0) return new BriefdbError("NOT_MIGRATED", message, isSharedTarget(target) ? "run `briefdb migrate`" : migrateHint(target));
  if ((report.invalidIndexes?.length ?? 0) > 0) {
    return new BriefdbError("UNHEALTHY", message, "briefdb's own INVALID indexes: run `briefdb migrate` to rebuild them");
  }
  if (report.problems.some((problem) => problem.startsWith(CHANGED_MIGRATIONS))) {
    return new BriefdbError("INVARIANT_VIOLATED", message, "restore the edited migration file and add a new migration instead");
  }
  // the server's role or its replication (--require, a synchronous standby missing)
  return new BriefdbError("UNHEALTHY", message, "with several servers in the URL, ?target_session_attrs=read-write finds the primary; replication: docs/failover.md");
}

/** health --wait: one line per change of state in logs, a spinner on a terminal; then the last report. */
async function waitedOutcome(ctx: Context, checks: { samples: number; deep: boolean; require?: RoleRequirement }, timeoutMs: number): Promise<Outcome> {
  const { waitForHealth } = await import("../core/health/wait.js");
  const spinner = await startSpinner(ctx.ui, "waiting for the database", "health --wait interrupted");
  const onState = ctx.ui.interactive ? (state: string) => spinner.message(state) : (state: string) => progressLine(`health: ${state}`);
  // runCli owns SIGINT/SIGTERM: answered here, a CI job cancelled while waiting still ends as CANCELLED
  const signal = ctx.answerSignals({ changesData: false });
  const waited = await waitForHealth(() => ctx.open(), { timeoutMs, ...checks, onState, signal }).catch((error: unknown) => {
    spinner.stop("interrupted");
    throw error;
  });
  spinner.stop(waited.report?.healthy ? "healthy" : "gave up waiting");
  if (waited.report === undefined) throw waited.openError ?? new BriefdbError("DB_UNREACHABLE", "the database never answered");
  const outcome = healthOutcome(waited.report, ctx.target);
  return { ...outcome, data: { ...outcome.data, waitedMs: waited.waitedMs, attempts: waited.attempts } };
}
