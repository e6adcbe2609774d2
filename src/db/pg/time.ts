/** Time in PostgreSQL SQL: timestamptz columns, converted to and from epoch milliseconds on the server. */
import { sql, type SQL } from "drizzle-orm";
import type { TimeSql } from "../inspection.js";

export const pgTime: TimeSql = {
  // double precision, which postgres.js reads as a number (numeric would come back as a string).
  epochMs: (timestamp: SQL) => sql`(extract(epoch from ${timestamp}) * 1000)::double precision`,
  fromEpochMs: (ms: number | SQL) => sql`to_timestamp((${ms})::double precision / 1000)`,
};
