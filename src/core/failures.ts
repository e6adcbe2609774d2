/**
 * Turns whatever a driver threw into a BriefdbError with a SPEC §5 code, so that callers of the
 * library and the CLI's exit codes see one vocabulary on both dialects.
 */
import type { BriefDatabase } from "../db/database.js";
import { rootMessage } from "../db/errors.js";
import { BriefdbError, firstLine } from "../errors.js";

export function toBriefdbError(db: BriefDatabase, error: unknown): BriefdbError {
  if (error instanceof BriefdbError) return error;
  const message = firstLine(rootMessage(error));
  switch (db.classify(error)) {
    case "unreachable":
      return new BriefdbError(
        "DB_UNREACHABLE",
        `cannot reach ${db.target.display}: ${message}`,
        "check that the server is running and the URL is right (--db, DATABASE_URL)",
        { cause: error },
      );
    case "undefined_table":
      return new BriefdbError("NOT_MIGRATED", `the schema is missing or behind: ${message}`, "run `briefdb migrate` first", {
        cause: error,
      });
    default:
      return new BriefdbError("DB_ERROR", message, undefined, { cause: error });
  }
}
