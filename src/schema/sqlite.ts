/**
 * `briefdb/schema/sqlite`: briefdb's SQLite tables for the app's own Drizzle queries (the same
 * tables and indexes briefdb migrates), and the database narrowed to SQLite with typed Drizzle
 * handles.
 */
import type { BriefDatabase } from "../db/database.js";
import type { SqliteBriefDatabase } from "../db/sqlite/database.js";
import { BriefdbError } from "../errors.js";

export * from "../db/sqlite/schema.js";
export type { SqliteOrm, SqliteBriefDatabase } from "../db/sqlite/database.js";

/** `db` with `db.drizzle` and `tx.drizzle` typed for SQLite; USAGE when it is another dialect. */
export function asSqliteDatabase(db: BriefDatabase): SqliteBriefDatabase {
  if (db.dialect !== "sqlite") throw new BriefdbError("USAGE", `asSqliteDatabase: ${db.target.display} is ${db.dialect}, not SQLite`);
  return db as SqliteBriefDatabase;
}
