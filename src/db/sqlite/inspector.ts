/**
 * Reads SQLite's EXPLAIN QUERY PLAN lines ("SCAN briefs", "SEARCH briefs USING INDEX x (slug=?)",
 * "USE TEMP B-TREE FOR ORDER BY") and its catalogue. SQLite keeps no statement statistics.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "../database.js";
import type { PlanReading, QueryInspector, ServerStatements } from "../inspection.js";

/** "SCAN briefs" with no index: every row read. Older SQLite wrote "SCAN TABLE briefs". */
const FULL_SCAN = /^SCAN (?:TABLE )?("?[\w]+"?)(?: AS \w+)?$/;
/** An automatic index is built from a full scan for the one query: not an index the schema has. */
const AUTOMATIC_INDEX = /^(?:SEARCH|SCAN) (?:TABLE )?("?[\w]+"?).* USING AUTOMATIC /;
const INDEX = /USING (?:COVERING )?INDEX ("?[\w]+"?)/;
const PRIMARY_KEY = /USING (?:INTEGER )?PRIMARY KEY/;
const SORT = /^USE TEMP B-TREE FOR (?:.* )?ORDER BY/;

export function readSqlitePlan(plan: readonly string[]): PlanReading {
  const fullScans: string[] = [];
  const indexes: string[] = [];
  let sorts = false;
  for (const line of plan) {
    const scanned = (FULL_SCAN.exec(line) ?? AUTOMATIC_INDEX.exec(line))?.[1];
    const index = INDEX.exec(line)?.[1];
    if (scanned) fullScans.push(unquote(scanned));
    else if (index) indexes.push(unquote(index));
    else if (PRIMARY_KEY.test(line)) indexes.push("PRIMARY KEY");
    if (SORT.test(line)) sorts = true;
  }
  return { usesIndex: indexes.length > 0 && fullScans.length === 0, fullScans, indexes, sorts };
}

export class SqliteInspector implements QueryInspector {
  constructor(private readonly db: Executor) {}

  readPlan(plan: readonly string[]): PlanReading {
    return readSqlitePlan(plan);
  }

  async indexExists(name: string): Promise<boolean> {
    const rows = await this.db.all(sql`SELECT 1 AS found FROM sqlite_master WHERE type = 'index' AND name = ${name}`);
    return rows.length > 0;
  }

  async serverStatements(): Promise<ServerStatements | null> {
    return null;
  }
}

function unquote(name: string): string {
  return name.replace(/^"|"$/g, "");
}
