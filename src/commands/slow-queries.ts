/** `briefdb slow-queries`: the query log aggregated per name, server statement statistics, and --probe. */
import { Command } from "commander";
import type { ProbeResult } from "../core/queries/probes.js";
import type { SlowQueryReport } from "../core/queries/slow-queries.js";
import { BriefdbError } from "../errors.js";
import { isoInstant } from "../core/instants.js";
import { trimmedBuckets, type BucketCounts } from "../core/queries/slow-queries.js";
import { oneLine, sparkline, startSpinner, table, type Outcome, type Ui } from "../render.js";
import { redactedCommandLine, reportPath } from "./report.js";
import { action } from "./context.js";
import { pastMoment, positiveMs, wholeNumber } from "./parse.js";
import type { GateFailure, ProbeGates } from "../core/queries/probe-gates.js";


interface SlowQueriesOptions {
  readonly since?: Date;
  readonly limit: number;
  readonly probe?: boolean;
  readonly runs?: number;
  readonly maxP95?: number;
  readonly requireIndex?: boolean;
  readonly report?: string;
}

export function slowQueriesCommand(): Command {
  return new Command("slow-queries")
    .description("the slow-query report: samples recorded by monitorQuery per query name; --probe times the canonical queries")
    .option("--since <when>", "only samples since then: 15m, 24h, 7d, or an ISO date (2025-06-01)", pastMoment("--since"))
    .option("--limit <n>", "most query names (and server statements) to show", wholeNumber("--limit", 1, 1000), 20)
    .option("--probe", "time the app's canonical queries on the current data and show their plans")
    .option("--runs <n>", "with --probe: timed runs per query (default 20)", wholeNumber("--runs", 1, 10_000))
    .option("--max-p95 <ms>", "with --probe, a CI gate: exit 1 when any canonical query's p95 is over this many ms", positiveMs("--max-p95"))
    .option("--require-index", "with --probe, a CI gate: exit 1 when any canonical query reads without an index")
    .option("--report <file.html>", "also write an HTML report: each query's latency histogram, and with --probe the plans (one file, no network)", reportPath)
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb slow-queries
  $ briefdb slow-queries --since 24h --limit 10
  $ briefdb slow-queries --probe --runs 50
  $ briefdb slow-queries --since 24h --probe --report slow.html   # histograms and plans as one HTML file
  $ briefdb slow-queries --since 2025-06-01 --json | jq '.recorded[] | {name, p95Ms}'
  $ briefdb slow-queries --probe --max-p95 5 --require-index   # a CI gate: exit 1 (GATE_FAILED) when missed

Samples are recorded by the library: monitorQuery(name, fn, { db }) keeps each one at or over its
warn threshold (500 ms by default; ≥ 1000 ms is slow). Percentiles are nearest-rank.`,
    )
    .action(
      action(async (ctx, options: SlowQueriesOptions) => {
        const gates: ProbeGates = { maxP95Ms: options.maxP95, requireIndex: options.requireIndex === true };
        const gated = options.maxP95 !== undefined || gates.requireIndex === true;
        if (options.runs !== undefined && !options.probe) throw new BriefdbError("USAGE", "--runs goes with --probe");
        if (gated && !options.probe) throw new BriefdbError("USAGE", "--max-p95 and --require-index go with --probe");
        const { slowQueryReport, slowQueryHistograms } = await import("../core/queries/slow-queries.js");
        const db = await ctx.openMigrated();
        const report = await slowQueryReport(db, { since: options.since, limit: options.limit });
        const histograms = await slowQueryHistograms(db, report.since, report.recorded.map((r) => r.name));
        let probes: ProbeResult[] | null = null;
        if (options.probe) {
          const { probeCanonicalQueries } = await import("../core/queries/probes.js");
          const spinner = await startSpinner(ctx.ui, "probing the canonical queries", "slow-queries --probe interrupted; nothing was changed");
          probes = await probeCanonicalQueries(db, { runs: options.runs });
          spinner.stop("probed the canonical queries");
        }
        if (options.report !== undefined) {
          const { slowQueriesReportHtml, writeReport } = await import("../core/report/html-report.js");
          const context = { commandLine: redactedCommandLine(), target: db.target.display };
          writeReport(options.report, await slowQueriesReportHtml(report, histograms, probes, context));
        }
        const outcome = slowQueriesOutcome(report, histograms, probes, db.target.display, options.limit, options.report);
        if (!gated || probes === null) return outcome;
        const { judgeProbes } = await import("../core/queries/probe-gates.js");
        return gatedOutcome(outcome, gates, judgeProbes(probes, gates));
      }),
    );
}

function slowQueriesOutcome(
  report: SlowQueryReport,
  histograms: ReadonlyMap<string, BucketCounts>,
  probes: ProbeResult[] | null,
  target: string,
  limit: number,
  reportFile: string | undefined,
): Outcome {
  return {
    ok: true,
    data: {
      target,
      since: report.since?.toISOString() ?? null,
      limit,
      recorded: report.recorded.map((row) => ({ ...row, lastSeen: isoInstant(row.lastSeen), latencyHistogram: trimmedBuckets(histograms.get(row.name)) })),
      names: report.names,
      statements: report.statements,
      probed: probes !== null,
      probes: probes ?? [],
      ...(reportFile === undefined ? {} : { report: reportFile }),
    },
    human: (ui) =>
      [recordedText(ui, report, histograms, target, limit), statementsText(ui, report), probesText(ui, probes), reportFile === undefined ? "" : ui.colors.dim(`report written to ${reportFile}`)]
        .filter((section) => section !== "")
        .join("\n\n"),
  };
}

function recordedText(ui: Ui, report: SlowQueryReport, histograms: ReadonlyMap<string, BucketCounts>, target: string, limit: number): string {
  const window = report.since ? `since ${report.since.toISOString()}` : "all time";
  if (report.recorded.length === 0) {
    return `nothing recorded in the query log of ${target} (${window})\n${ui.colors.dim(
      "monitorQuery(name, fn, { db }) records each sample at or over its warn threshold (500 ms by default)",
    )}`;
  }
  const rows = report.recorded.map((r) => [
    r.name,
    r.count,
    r.failed === 0 ? "0" : ui.colors.red(String(r.failed)),
    r.p50Ms,
    r.p95Ms,
    r.maxMs,
    sparkline(trimmedBuckets(histograms.get(r.name))),
    isoInstant(r.lastSeen) ?? "–",
  ]);
  const shown =
    report.names > report.recorded.length
      ? `${report.recorded.length} of ${report.names} query names (--limit ${limit})`
      : `${report.names} query name${report.names === 1 ? "" : "s"}`;
  const head = ["query", "count", "failed", "p50 ms", "p95 ms", "max ms", "spread", "last seen"];
  return `query log of ${target} (${window})\n${table(ui, head, rows)}\n${ui.colors.dim(`${shown}, slowest p95 first`)}`;
}

function statementsText(ui: Ui, report: SlowQueryReport): string {
  const statements = report.statements;
  if (statements === null) return "";
  if (!statements.available) return ui.colors.yellow(`${statements.source}: ${statements.hint}`);
  if (statements.statements.length === 0) return `${statements.source}: no statements recorded yet`;
  const rows = statements.statements.map((s) => [s.calls, s.totalMs, s.meanMs, s.rows, oneLine(s.query, 80)]);
  return `${statements.source}: costliest statements\n${table(ui, ["calls", "total ms", "mean ms", "rows", "query"], rows)}`;
}

function probesText(ui: Ui, probes: ProbeResult[] | null): string {
  if (probes === null) return "";
  const rows = probes.map((p) => [p.name, p.rows, p.p50Ms, p.p95Ms, readsText(ui, p)]);
  const plans = probes.map((p) => {
    const fix = p.suggestion ? `\n  ${ui.colors.yellow(`fix: ${p.suggestion}`)}\n  ${ui.colors.dim(p.note ?? "")}` : "";
    const parameter = p.parameter === null ? "" : ` [${p.parameter}]`;
    const plan = p.plan.map((line) => `  ${line}`).join("\n");
    return `${ui.colors.bold(p.name)} ${ui.colors.dim(`${p.description}${parameter}`)}\n${plan}${fix}`;
  });
  const runs = probes[0]?.runs ?? 0;
  return `probes (${runs} timed runs each)\n${table(ui, ["probe", "rows", "p50 ms", "p95 ms", "reads"], rows)}\n\n${plans.join("\n")}`;
}

function readsText(ui: Ui, probe: ProbeResult): string {
  const sort = probe.sorts ? " + sort" : "";
  if (probe.usesIndex) return `${ui.colors.green(`index ${probe.indexes.join(", ")}`)}${sort}`;
  return ui.colors.red(`FULL SCAN ${probe.fullScans.join(", ")}${sort}`);
}

/** The report with the CI gates' verdict: exit 1 (GATE_FAILED) naming each probe that missed. */
function gatedOutcome(outcome: Outcome, gates: ProbeGates, failures: GateFailure[]): Outcome {
  const error =
    failures.length === 0
      ? undefined
      : new BriefdbError("GATE_FAILED", `slow-queries: ${failures.length} gate(s) failed: ${failures.map((f) => `${f.probe} ${f.detail}`).join("; ")}`);
  return {
    ok: failures.length === 0,
    ...(error ? { error } : {}),
    data: { ...outcome.data, gates: { maxP95Ms: gates.maxP95Ms ?? null, requireIndex: gates.requireIndex === true, failures } },
    human: (ui) => {
      const verdict =
        failures.length === 0
          ? ui.colors.green("gates passed")
          : `${ui.colors.red("gates failed")}\n${table(ui, ["probe", "gate", "detail"], failures.map((f) => [f.probe, f.gate, f.detail]))}`;
      return `${outcome.human(ui)}\n\n${verdict}`;
    },
  };
}
