/** `briefdb health`: connectivity, latency, server version and migration state; exit 1 when unhealthy. */
import { Command } from "commander";
import type { HealthReport } from "../core/health.js";
import { BriefdbError } from "../errors.js";
import { keyValues, type Outcome } from "../render.js";
import { action } from "./context.js";
import { wholeNumber } from "./parse.js";


export function healthCommand(): Command {
  return new Command("health")
    .description("check connectivity, round-trip latency, server version and migrations; exit 1 when unhealthy")
    .option("--samples <n>", "round trips to time", wholeNumber("--samples", 1, 10_000), 5)
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb health
  $ briefdb health --samples 50 --json
  $ DATABASE_URL=postgres://me@localhost:5432/briefs briefdb health --timeout 2000`,
    )
    .action(
      action(async (ctx, options: { samples: number }) => {
        const { checkDatabaseHealth } = await import("../core/health.js");
        const db = await ctx.open();
        return healthOutcome(await checkDatabaseHealth(db, { samples: options.samples }));
      }),
    );
}

function healthOutcome(report: HealthReport): Outcome {
  const error = report.error ?? (report.healthy ? undefined : schemaProblem(report));
  return {
    ok: report.healthy,
    ...(error ? { error } : {}),
    data: {
      healthy: report.healthy,
      dialect: report.dialect,
      target: report.target,
      serverVersion: report.serverVersion,
      latencyMs: report.latencyMs,
      samples: report.samples,
      migrations: report.migrations,
      invalidIndexes: report.invalidIndexes,
      problems: report.problems,
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
        ["server", report.serverVersion ?? "—"],
        ["latency", latency],
        ["migrations", migrations],
        ...((report.invalidIndexes?.length ?? 0) > 0 ? [["indexes", ui.colors.red(`INVALID: ${report.invalidIndexes?.join(", ")}`)] as const] : []),
      ]);
    },
  };
}

/** Reachable but unhealthy: the schema is behind its migrations, or differs from them. */
function schemaProblem(report: HealthReport): BriefdbError {
  const message = report.problems.join("; ");
  if ((report.migrations?.pending ?? 0) > 0) return new BriefdbError("NOT_MIGRATED", message, "run `briefdb migrate`");
  return (report.invalidIndexes?.length ?? 0) > 0
    ? new BriefdbError("UNHEALTHY", message, "run `briefdb migrate` to rebuild the INVALID index")
    : new BriefdbError("INVARIANT_VIOLATED", message, "restore the edited migration file and add a new migration instead");
}
