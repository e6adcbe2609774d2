/**
 * openDatabase: a URL in, a BriefDatabase out. Each driver is imported only when its dialect is
 * used, so `briefdb --version` and SQLite runs never load postgres.js and the reverse.
 */
import type { BriefDatabase, OpenOptions } from "./database.js";
import { chooseUrl, parseTarget, type Target } from "./target.js";

export async function openDatabase(url?: string, options: OpenOptions = {}): Promise<BriefDatabase> {
  return openTarget(parseTarget(chooseUrl(url)), options);
}

export async function openTarget(target: Target, options: OpenOptions = {}): Promise<BriefDatabase> {
  if (target.dialect === "sqlite") {
    const { SqliteDatabase } = await import("./sqlite/database.js");
    return new SqliteDatabase(target, options);
  }
  const { PgDatabase } = await import("./pg/database.js");
  return new PgDatabase(target, options);
}
