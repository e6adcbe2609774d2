/** `briefdb race-test`: parallel deductions at a throw-away user, then the ledger invariants. */
import { Command } from "commander";
import type { RaceReport } from "../core/race/race.js";
import { raceOpeningBalance, RACE_MODES, RACE_STRATEGIES, type RaceMode, type RaceStrategy } from "../core/race/options.js";
import { assertLocalTarget } from "../db/target.js";
import { BriefdbError } from "../errors.js";
import { keyValues, startSpinner, table, textHistogram, type Outcome } from "../render.js";
import { action } from "./context.js";
import { oneOf, wholeNumber } from "./parse.js";
import { redactedCommandLine, reportPath } from "./report.js";
import { parseAmount } from "../core/ledger/amount.js";

interface RaceCommandOptions {
  readonly n: number;
  readonly amount: number;
  readonly balance?: number;
  readonly concurrency?: number;
  readonly strategy: RaceStrategy;
  readonly mode: RaceMode;
  readonly keep?: boolean;
  readonly allowRemote?: boolean;
  readonly url?: string;
  readonly user?: string;
  readonly method: string;
  readonly header: readonly string[];
  readonly body?: string;
  readonly report?: string;
}

export function raceTestCommand(): Command {
  return new Command("race-test")
    .description("fire n deductions (or a mix of holds, captures, releases and deductions) truly in parallel at a throw-away user, then check the ledger invariants; exit 1 when any fails")
    .option("--n <count>", "operations to fire", wholeNumber("--n", 1, 1_000_000), 100)
    .option("--amount <n>", "tokens per deduction (holds: 1 to 4 times it)", parseAmount, 1)
    .option("--balance <n>", "opening balance (default: enough for half)", wholeNumber("--balance", 0))
    .option("--concurrency <n>", "parallel racers, each with its own connection (default: min(n, 8))", wholeNumber("--concurrency", 1, 256))
    .option("--strategy <name>", "atomic (briefdb) or naive (read, check, write: must fail)", oneOf("--strategy", RACE_STRATEGIES), "atomic")
    .option("--mode <name>", "deducts, or holds: holds, captures, releases, expiries and deducts mixed", oneOf("--mode", RACE_MODES), "deducts")
    .option("--keep", "keep the throw-away user and its ledger")
    .option("--allow-remote", "allow a non-local target (and with --url, a non-loopback URL)")
    .option("--url <endpoint>", "race the app's own endpoint instead, then judge by the database (loopback unless --allow-remote)")
    .option("--user <id>", "with --url: the user the requests act as")
    .option("--method <verb>", "with --url: the HTTP method", "POST")
    .option("--header <line>", "with --url: 'Name: value', repeatable; values may hold {{user}} {{i}}", (line: string, all: string[]) => [...all, line], [])
    .option("--body <template>", 'with --url: the body, with {{amount}} {{user}} {{i}} (default {"amount":{{amount}}})')
    .option("--report <file.html>", "also write an HTML report: the latency histogram with p50/p95/p99, the outcome, the invariants (one file, no network)", reportPath)
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb race-test --n 1000
  $ briefdb race-test --n 200 --strategy naive      # the "before" code: the invariants must fail
  $ briefdb race-test --mode holds --n 1000          # holds, captures, releases, expiries and deducts at once
  $ briefdb race-test --mode holds --strategy naive  # check available, then write: must fail
  $ briefdb race-test --n 1000 --report race.html    # the histogram and invariants as one HTML file
  $ briefdb race-test --db postgres://me@localhost/briefs --n 1000 --concurrency 10 --json
  $ briefdb race-test --url http://127.0.0.1:3000/api/tokens/deduct --user seed-user-2 --balance 50 --n 100 \\
      --header 'x-user: {{user}}' --body '{"amount":{{amount}},"request":"r-{{i}}"}'

With --url, each request's time limit is the global --timeout (ms).`,
    )
    .action(
      action(async (ctx, options: RaceCommandOptions) => {
        if (options.url !== undefined) {
          if (options.report !== undefined) throw new BriefdbError("USAGE", "--report goes with a race at a throw-away user, not --url");
          if (options.keep || options.strategy !== "atomic" || options.mode !== "deducts") {
            throw new BriefdbError("USAGE", "--keep, --strategy and --mode race a throw-away user, not --url");
          }
          const { raceHttpEndpoint } = await import("./race-test-http.js");
          return raceHttpEndpoint(ctx, { ...options, url: options.url });
        }
        if (options.user !== undefined || options.body !== undefined || options.header.length > 0) {
          throw new BriefdbError("USAGE", "--user, --header and --body go with --url");
        }
        raceOpeningBalance(options.n, options.amount, options.balance); // before any connection
        if (!options.allowRemote) assertLocalTarget(ctx.target, "race-test");
        const db = await ctx.openMigrated();
        const { runRaceTest } = await import("../core/race/race.js");
        const spinner = await startSpinner(
          ctx.ui,
          `racing ${options.n} ${options.mode === "holds" ? "hold operations" : "deductions"} (${options.strategy})`,
          "race-test interrupted; its throw-away user may remain (tokens verify still holds)",
        );
        const report = await runRaceTest(db, {
          n: options.n,
          amount: options.amount,
          strategy: options.strategy,
          mode: options.mode,
          ...(options.balance === undefined ? {} : { balance: options.balance }),
          ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
          keep: options.keep === true,
          allowRemote: options.allowRemote === true,
          openOptions: { timeoutMs: ctx.globals.timeout, prepare: ctx.globals.prepare, batch: ctx.globals.batch ?? true },
        }).finally(() => spinner.stop("race finished"));
        if (options.report !== undefined) {
          const { raceReportHtml, writeReport } = await import("../core/report/html-report.js");
          writeReport(options.report, await raceReportHtml(report, { commandLine: redactedCommandLine(), target: db.target.display }));
        }
        return raceOutcome(report, options.report);
      }),
    );
}

function raceOutcome(report: RaceReport, reportFile: string | undefined): Outcome {
  const failed = report.invariants.filter((i) => !i.ok);
  const error =
    failed.length === 0
      ? undefined
      : new BriefdbError(
          "INVARIANT_VIOLATED",
          `race-test (${report.mode === "holds" ? "holds, " : ""}${report.strategy}): ${failed.length} invariant(s) broken: ${failed.map((i) => `${i.name} (${i.detail})`).join("; ")}`,
        );
  return {
    ok: report.ok,
    ...(error ? { error } : {}),
    data: { ...report, ...(reportFile === undefined ? {} : { report: reportFile }) },
    human: (ui) => {
      const rows = report.invariants.map((i) => [i.ok ? ui.colors.green("ok") : ui.colors.red("FAIL"), i.name, i.detail]);
      const holds = report.mode === "holds";
      const summary = keyValues(ui, [
        ["strategy", holds ? `${report.strategy}, holds mode` : report.strategy],
        [holds ? "operations" : "deductions", `${report.n} × ${report.amount} by ${report.concurrency} parallel connections`],
        ["outcome", `${report.successes} succeeded, ${report.rejected} refused${holds ? "" : " (insufficient)"}, ${report.errors} errors`],
        ...Object.entries(report.operations ?? {}).map(([operation, outcomes]): [string, string] => [
          `  ${operation}`,
          Object.entries(outcomes).map(([outcome, n]) => `${n} ${outcome}`).join(", "),
        ]),
        ["balance", `${report.initialBalance} → ${report.finalBalance}`],
        ["throughput", `${report.throughputPerSec}/s`],
        ["latency", `p50 ${report.latencyMs.p50} ms · p95 ${report.latencyMs.p95} ms · p99 ${report.latencyMs.p99} ms`],
        ["user", `${report.userId}${report.kept ? " (kept)" : " (removed)"}`],
      ]);
      const written = reportFile === undefined ? "" : `\n${ui.colors.dim(`report written to ${reportFile}`)}`;
      return `${summary}\n${textHistogram(ui, report.latencyHistogram)}\n${table(ui, ["", "invariant", "detail"], rows)}${written}`;
    },
  };
}
