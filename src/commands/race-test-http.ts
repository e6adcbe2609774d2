/**
 * `briefdb race-test --url`: the app's own endpoint raced, the database judged. Options are
 * checked before any request and any connection; Ctrl-C stops sending and reports what was sent
 * (exit 130).
 */
import type { HttpRaceReport } from "../core/race/http-race.js";
import { assertLocalTarget } from "../db/target.js";
import { BriefdbError } from "../errors.js";
import { keyValues, table, textHistogram, type Outcome } from "../render.js";
import type { Context } from "./context.js";

export interface HttpRaceCommandOptions {
  readonly url: string;
  readonly user?: string;
  readonly method: string;
  readonly header: readonly string[];
  readonly body?: string;
  readonly n: number;
  readonly amount: number;
  readonly balance?: number;
  readonly concurrency?: number;
  readonly allowRemote?: boolean;
}

export async function raceHttpEndpoint(ctx: Context, options: HttpRaceCommandOptions): Promise<Outcome> {
  if (options.user === undefined) throw new BriefdbError("USAGE", "race-test --url needs --user <id>: the user the requests act as");
  const { checkHttpRaceOptions, runHttpRace } = await import("../core/race/http-race.js");
  const template = { url: options.url, method: options.method, headers: options.header, body: options.body, allowRemote: options.allowRemote === true };
  checkHttpRaceOptions(template); // before any request
  if (!options.allowRemote) assertLocalTarget(ctx.target, "race-test"); // before any connection
  const db = await ctx.openMigrated();
  // runCli owns SIGINT/SIGTERM: answered here, the first one stops sending and the report is made
  const signal = ctx.answerSignals();
  const report = await runHttpRace(db, {
    ...template,
    userId: options.user,
    n: options.n,
    amount: options.amount,
    ...(options.balance === undefined ? {} : { balance: options.balance }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    timeoutMs: ctx.globals.timeout,
    signal,
  });
  return httpRaceOutcome(report);
}

function httpRaceOutcome(report: HttpRaceReport): Outcome {
  const failed = report.invariants.filter((i) => !i.ok);
  const error = report.interrupted
    ? new BriefdbError("CANCELLED", `race-test interrupted: ${report.sent} of ${report.n} requests sent, ${report.completed} answered; nothing judged`)
    : failed.length === 0
      ? undefined
      : new BriefdbError(
          "INVARIANT_VIOLATED",
          `race-test ${report.method} ${report.url}: ${failed.length} invariant(s) broken: ${failed.map((i) => `${i.name} (${i.detail})`).join("; ")}`,
        );
  return {
    ok: report.ok,
    ...(error ? { error } : {}),
    data: { ...report },
    human: (ui) => {
      const statuses = Object.entries(report.statuses).map(([status, count]) => `${count} × ${status}`).join(", ") || "none";
      const summary = keyValues(ui, [
        ["endpoint", `${report.method} ${report.url}`],
        ["requests", `${report.sent} of ${report.n} sent, ${report.amount} token${report.amount === 1 ? "" : "s"} each, ${report.concurrency} in flight`],
        ["outcome", `${report.successes} succeeded (2xx), ${report.rejected} refused (4xx), ${report.errors} errors`],
        ["statuses", statuses],
        ["balance", `${report.initialBalance} → ${report.finalBalance} (user ${report.userId}, ${report.ledgerRowsAdded} ledger rows added)`],
        ["throughput", `${report.throughputPerSec}/s`],
      ]);
      const latency = Object.entries(report.latencyByClass).map(([c, l]) => [c, l.count, l.p50, l.p95, l.p99]);
      const latencyTable = `${table(ui, ["status", "count", "p50 ms", "p95 ms", "p99 ms"], latency)}\n${textHistogram(ui, report.latencyHistogram)}`;
      if (report.interrupted) return `${summary}\n${latencyTable}`;
      const rows = report.invariants.map((i) => [i.ok ? ui.colors.green("ok") : ui.colors.red("FAIL"), i.name, i.detail]);
      return `${summary}\n${latencyTable}\n${table(ui, ["", "invariant", "detail"], rows)}`;
    },
  };
}
