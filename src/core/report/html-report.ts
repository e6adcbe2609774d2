/**
 * One self-contained HTML file for `race-test --report` and `slow-queries --report`: the latency
 * histogram (inline SVG drawn by the dashboard's own chart module, web/dashboard/charts.js), the
 * figures beside it, the command line and the redacted target. No script and nothing fetched: it
 * opens from disk, offline, and its CSP says so. Every value is escaped.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BriefdbError } from "../../errors.js";
import { PACKAGE_ROOT } from "../../package-root.js";
import { isoInstant } from "../instants.js";
import type { ProbeResult } from "../queries/probes.js";
import { trimmedBuckets, type BucketCounts, type SlowQueryReport } from "../queries/slow-queries.js";
import type { RaceReport } from "../race/race.js";
import type { LatencyBucket } from "../stats.js";

type Node = string;
type Factory = (tag: string, attributes: Record<string, string | number>, children: string | Node[]) => Node;
interface Mark {
  readonly label: string;
  readonly ms: number;
}
interface ChartsModule {
  histogramSvg(h: Factory, buckets: readonly LatencyBucket[], options?: { title?: string; marks?: readonly Mark[]; width?: number; height?: number; xLabel?: string }): Node;
  markupFactory(): Factory;
  escapeMarkup(text: string): string;
  visibleText(text: string): string;
  duration(ms: number): string;
}

const WEB = join(PACKAGE_ROOT, "web", "dashboard");

async function charts(): Promise<ChartsModule> {
  return (await import(pathToFileURL(join(WEB, "charts.js")).href)) as ChartsModule;
}

/** Where the report came from: shown at its top. */
export interface ReportContext {
  /** The command line as run, secrets redacted. */
  readonly commandLine: string;
  /** The redacted target. */
  readonly target: string;
  readonly generatedAt?: Date;
}

/** race-test's report: the histogram with p50/p95/p99 marked, the outcome by status, the invariants. */
export async function raceReportHtml(report: RaceReport, context: ReportContext): Promise<string> {
  const c = await charts();
  const e = (text: string) => c.escapeMarkup(c.visibleText(text));
  const h = c.markupFactory();
  const marks = [
    { label: "p50", ms: report.latencyMs.p50 },
    { label: "p95", ms: report.latencyMs.p95 },
    { label: "p99", ms: report.latencyMs.p99 },
  ];
  const outcome = [
    ["succeeded", report.successes],
    ["refused", report.rejected],
    ["errors", report.errors],
  ] as const;
  const operations = Object.entries(report.operations ?? {}).map(
    ([operation, outcomes]) => `<tr><td>${e(operation)}</td><td>${e(Object.entries(outcomes).map(([o, n]) => `${n} ${o}`).join(", "))}</td></tr>`,
  );
  const invariants = report.invariants.map(
    (i) => `<tr><td class="${i.ok ? "good" : "bad"}">${i.ok ? "ok" : "FAIL"}</td><td>${e(i.name)}</td><td>${e(i.detail)}</td></tr>`,
  );
  const body = `
<section class="stats">
  ${stat(e, "invariants", report.ok ? "hold" : "broken", report.ok ? "good" : "bad")}
  ${stat(e, "operations", `${report.n} × ${report.amount}`)}
  ${stat(e, "parallel connections", String(report.concurrency))}
  ${stat(e, "throughput", `${report.throughputPerSec}/s`)}
  ${stat(e, "p50", c.duration(report.latencyMs.p50))}
  ${stat(e, "p95", c.duration(report.latencyMs.p95))}
  ${stat(e, "p99", c.duration(report.latencyMs.p99))}
  ${stat(e, "max", c.duration(report.latencyMs.max))}
</section>
<figure class="card"><figcaption>Latency of each operation (count per bucket; p50, p95 and p99 marked)</figcaption>
${c.histogramSvg(h, report.latencyHistogram, { title: "race-test latency histogram", marks, width: 900, height: 240 })}
</figure>
<div class="grid2">
<div class="card"><h3>Outcome by status</h3><table>
${outcome.map(([name, n]) => `<tr><td>${name}</td><td class="num">${n}</td></tr>`).join("")}
<tr><td>balance</td><td class="num">${report.initialBalance} → ${report.finalBalance}</td></tr>
</table>${operations.length ? `<h3>By operation</h3><table>${operations.join("")}</table>` : ""}</div>
<div class="card"><h3>Invariants</h3><table><thead><tr><th></th><th>invariant</th><th>figures</th></tr></thead>${invariants.join("")}</table></div>
</div>`;
  return page(e, `race-test (${report.mode}, ${report.strategy})`, context, body);
}

/** slow-queries' report: per query name its figures and histogram; the probes and their plans when probed. */
export async function slowQueriesReportHtml(
  report: SlowQueryReport,
  histograms: ReadonlyMap<string, BucketCounts>,
  probes: readonly ProbeResult[] | null,
  context: ReportContext,
): Promise<string> {
  const c = await charts();
  const e = (text: string) => c.escapeMarkup(c.visibleText(text));
  const h = c.markupFactory();
  const rows = report.recorded.map((r) => {
    const buckets = trimmedBuckets(histograms.get(r.name));
    const svg = c.histogramSvg(h, buckets, { title: `${r.name}: latency histogram`, marks: [{ label: "p50", ms: r.p50Ms }, { label: "p95", ms: r.p95Ms }, { label: "max", ms: r.maxMs }], width: 520, height: 170 });
    return `<div class="card"><h3 class="mono">${e(r.name)}</h3>
<p class="muted">${r.count} samples · ${r.failed} failed · p50 ${e(c.duration(r.p50Ms))} · p95 ${e(c.duration(r.p95Ms))} · max ${e(c.duration(r.maxMs))} · last seen ${e(isoInstant(r.lastSeen) ?? "–")}</p>${svg}</div>`;
  });
  const window = report.since ? `since ${report.since.toISOString()}` : "all time";
  const probeRows = (probes ?? []).map(
    (p) => `<details class="probe"><summary><span class="badge ${p.usesIndex ? "good" : "bad"}">${p.usesIndex ? "index" : "no index"}</span> <span class="mono">${e(p.name)}</span> <span class="muted">p50 ${e(c.duration(p.p50Ms))} · p95 ${e(c.duration(p.p95Ms))} · ${p.rows} rows</span></summary><pre>${e(p.plan.join("\n"))}</pre>${p.suggestion ? `<p class="warn">fix: ${e(p.suggestion)}</p>` : ""}</details>`,
  );
  const body = `
<h2>Query log (${e(window)}): ${report.names} query name${report.names === 1 ? "" : "s"}, slowest p95 first</h2>
${rows.length ? `<div class="grid2">${rows.join("\n")}</div>` : `<p class="muted">Nothing recorded: monitorQuery(name, fn, { db }) records each sample at or over its warn threshold.</p>`}
${probes === null ? "" : `<h2>Canonical queries: plans and whether an index served them</h2><div class="card">${probeRows.join("\n")}</div>`}`;
  return page(e, "slow-queries", context, body);
}


function stat(e: (text: string) => string, label: string, value: string, className = ""): string {
  return `<div class="stat"><span class="label">${e(label)}</span><span class="value ${className}">${e(value)}</span></div>`;
}

/** The page: the dashboard's stylesheet inline (both themes), a CSP that allows nothing but it. */
function page(e: (text: string) => string, title: string, context: ReportContext, body: string): string {
  const css = readFileSync(join(WEB, "dashboard.css"), "utf8");
  const at = (context.generatedAt ?? new Date()).toISOString();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>briefdb ${e(title)}</title>
<style>
${css}
</style>
</head>
<body>
<header class="top"><div class="brand"><span class="logo" aria-hidden="true"></span><h1>briefdb ${e(title)}</h1></div><span class="target">${e(context.target)}</span><span class="muted">${e(at)}</span></header>
<main>
<p class="mono command">$ ${e(context.commandLine)}</p>
${body}
</main>
<footer class="muted">written by briefdb; self-contained, no script</footer>
</body>
</html>
`;
}

/** Writes the report; a path that cannot be written is USAGE, after the work (its result is still printed). */
export function writeReport(path: string, html: string): void {
  try {
    writeFileSync(path, html);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "an error";
    throw new BriefdbError("USAGE", `cannot write the report to ${path}: ${code}`, "give --report a writable file path");
  }
}
