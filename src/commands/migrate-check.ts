/** `migrate --check` output: one row per pending statement, the hazards counted; exit 1 on any. */
import { BriefdbError } from "../errors.js";
import { formatCount, table, type Outcome } from "../render.js";

type Report = Awaited<ReturnType<typeof import("../core/migrate/hazards.js").checkPendingMigrations>>;

export function checkOutcome(report: Report, target: string): Outcome {
  const error =
    report.hazards > 0
      ? new BriefdbError(
          "UNHEALTHY",
          `${report.hazards} pending statement(s) would block writes on a table above ${formatCount(report.maxBlockingRows)} rows on ${target}`,
          report.offline ? "apply without --offline, or in a maintenance window" : "apply it in a maintenance window, or split the change so that it runs online",
        )
      : undefined;
  return {
    ok: error === undefined,
    ...(error ? { error } : {}),
    data: { target, offline: report.offline, maxBlockingRows: report.maxBlockingRows, hazards: report.hazards, statements: report.statements },
    human: (ui) => {
      if (report.statements.length === 0) return `${target}: nothing pending`;
      const rows = report.statements.map((s) => [
        s.tag,
        firstLine(s.statement),
        `${s.lock}${s.online ? " (online)" : ""}`,
        blocks(s),
        s.newTable ? "new table" : s.rows === null ? (s.table === null ? "—" : "unknown") : `${s.rowsEstimated ? "~" : ""}${formatCount(s.rows)}`,
        s.hazard ? ui.colors.red("HAZARD") : ui.colors.green("ok"),
      ]);
      const summary = `${target}: ${report.statements.length} pending statement(s), ${report.hazards} hazard(s) above ${formatCount(report.maxBlockingRows)} rows${report.offline ? " (--offline)" : ""}`;
      return `${table(ui, ["migration", "statement", "lock", "blocks", "rows", ""], rows)}\n${summary}`;
    },
  };
}

function blocks(s: Report["statements"][number]): string {
  const what = s.blocksReads ? "reads, writes" : s.blocksWrites ? "writes" : "nothing";
  return what === "nothing" ? what : `${what} (${s.holds})`;
}

function firstLine(statement: string): string {
  const line = statement.split("\n")[0] ?? "";
  return line.length > 60 ? `${line.slice(0, 57)}…` : line;
}
