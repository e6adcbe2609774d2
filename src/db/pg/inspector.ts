/**
 * Reads PostgreSQL's EXPLAIN lines ("Seq Scan on briefs", "Index Scan Backward using x on briefs",
 * "Sort"), its catalogue, and pg_stat_statements when the extension is installed and loaded.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "../database.js";
import { firstLine } from "../../errors.js";
import { rootMessage } from "../driver-errors.js";
import {
  readPlanLines,
  type PlanPatterns,
  type PlanReading,
  type QueryInspector,
  type ServerStatement,
  type ServerStatements,
} from "../inspection.js";

const PATTERNS: PlanPatterns = {
  fullScans: [/\bSeq Scan on ("?[\w.]+"?)/],
  indexes: [/\b(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) ("?[\w.]+"?)/],
  // A Sort node ("Sort  (cost…", "->  Incremental Sort  (cost…"), not its "Sort Key:" detail line.
  sort: /(?:^|->)\s*(?:Incremental )?Sort\s+\(/,
};
const SOURCE = "pg_stat_statements";
const NOT_INSTALLED_HINT =
  "pg_stat_statements is not installed in this database: add pg_stat_statements to shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements";

export class PgInspector implements QueryInspector {
  constructor(private readonly db: Executor) {}

  readPlan(plan: readonly string[]): PlanReading {
    return readPlanLines(plan, PATTERNS);
  }

  async indexExists(name: string): Promise<boolean> {
    const rows = await this.db.all(
      sql`SELECT 1 AS found FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ${name}`,
    );
    return rows.length > 0;
  }

  async serverRole(): Promise<string> {
    const [row] = await this.db.all<{ replica: boolean; login: string }>(sql`SELECT pg_is_in_recovery() AS replica, current_user AS login`);
    return `${row?.replica ? "replica (read-only)" : "primary"}, as ${row?.login ?? "unknown"}`;
  }

  async serverStatements(limit: number): Promise<ServerStatements> {
    const installed = await this.db.all(sql`SELECT 1 AS found FROM pg_extension WHERE extname = ${SOURCE}`);
    if (installed.length === 0) return { available: false, source: SOURCE, hint: NOT_INSTALLED_HINT };
    try {
      return { available: true, source: SOURCE, statements: await this.costliest(limit) };
    } catch (error) {
      // Installed but unreadable: not preloaded, a version without *_exec_time, or no privilege.
      return { available: false, source: SOURCE, hint: `pg_stat_statements cannot be read: ${firstLine(rootMessage(error))}` };
    }
  }

  private async costliest(limit: number): Promise<ServerStatement[]> {
    const rows = await this.db.all<{ query: string; calls: string; total_ms: number; mean_ms: number; rows: string }>(
      sql`SELECT query, calls, total_exec_time AS total_ms, mean_exec_time AS mean_ms, rows
          FROM pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          ORDER BY total_exec_time DESC
          LIMIT ${limit}`,
    );
    return rows.map((row) => ({
      query: row.query,
      calls: Number(row.calls),
      totalMs: row.total_ms,
      meanMs: row.mean_ms,
      rows: Number(row.rows),
    }));
  }
}
