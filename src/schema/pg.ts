/**
 * `briefdb/schema/pg`: briefdb's PostgreSQL tables for the app's own Drizzle queries (the same
 * tables and indexes briefdb migrates), and the database narrowed to PostgreSQL with typed
 * Drizzle handles.
 */
import type { BriefDatabase } from "../db/database.js";
import type { PgBriefDatabase } from "../db/pg/database.js";
import { BriefdbError } from "../errors.js";

export * from "../db/pg/schema.js";
export type { PgOrm, PgTx, PgBriefDatabase } from "../db/pg/database.js";

/** `db` with `db.drizzle` and `tx.drizzle` typed for PostgreSQL; USAGE when it is another dialect. */
export function asPgDatabase(db: BriefDatabase): PgBriefDatabase {
  if (db.dialect !== "postgresql") throw new BriefdbError("USAGE", `asPgDatabase: ${db.target.display} is ${db.dialect}, not PostgreSQL`);
  return db as PgBriefDatabase;
}
