/** Time in SQLite SQL: the schema stores timestamps as epoch-millisecond integers, so both ways are the value itself. */
import { sql, type SQL } from "drizzle-orm";
import type { TimeSql } from "../inspection.js";

export const sqliteTime: TimeSql = {
  epochMs: (timestamp: SQL) => timestamp,
  fromEpochMs: (ms: number | SQL) => (typeof ms === "number" ? sql`${Math.round(ms)}` : sql`(${ms})`),
};
