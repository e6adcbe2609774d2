/** The hint for pending migrations, light enough for a command module to import when the program is built. */
import { isSharedTarget, type Target } from "../../db/target.js";

/**
 * What to do about pending migrations on `target`. An in-memory SQLite database is new in every
 * process, so a `briefdb migrate` run beside it can never help.
 */
export function migrateHint(target: Target): string {
  if (!isSharedTarget(target)) {
    return "an in-memory database starts empty in every process: use a file (--db file:./briefdb.db), or migrate it in the process that uses it (migrate(db))";
  }
  return `run \`briefdb migrate --db ${target.display}\` first`;
}
