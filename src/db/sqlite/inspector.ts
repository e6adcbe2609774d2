/**
 * Reads SQLite's EXPLAIN QUERY PLAN lines ("SCAN briefs", "SEARCH briefs USING INDEX x (slug=?)",
 * "USE TEMP B-TREE FOR ORDER BY") and its catalogue. SQLite keeps no statement statistics.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "../database.js";
import { readPlanLines, type PlanPatterns, type PlanReading, type QueryInspector, type ServerStatements } from "../inspection.js";

const PATTERNS: PlanPatterns = {
  fullScans: [
    // "SCAN briefs" with no index: every row read. Older SQLite wrote "SCAN TABLE briefs".
    /^SCAN (?:TABLE )?("?\w+"?)(?: AS \w+)?$/,
    // An automatic index is built from a full scan for this one query: not an index the schema has.
    /^(?:SEARCH|SCAN) (?:TABLE )?("?\w+"?).* USING AUTOMATIC /,
  ],
  indexes: [/USING (?:COVERING )?INDEX ("?\w+"?)/, /USING (?:INTEGER )?(PRIMARY KEY)/],
  sort: /^USE TEMP B-TREE FOR (?:.* )?ORDER BY/,
};

export class SqliteInspector implements QueryInspector {
  constructor(private readonly db: Executor) {}

  readPlan(plan: readonly string[]): PlanReading {
    return readPlanLines(plan, PATTERNS);
  }

  async indexExists(name: string): Promise<boolean> {
    const rows = await this.db.all(sql`SELECT 1 AS found FROM sqlite_master WHERE type = 'index' AND name = ${name}`);
    return rows.length > 0;
  }

  async serverRole(): Promise<string> {
    return "embedded";
  }

  async replication(): Promise<null> {
    return null;
  }

  async listedPrimaries(): Promise<null> {
    return null;
  }

  async serverStatements(): Promise<ServerStatements | null> {
    return null;
  }
}
