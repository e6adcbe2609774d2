/**
 * The one place where any failure becomes a BriefdbError with a code of the contract
 * (docs/architecture.md, "Exit codes"), so that library callers and the CLI's exit codes see one
 * vocabulary on both dialects. The original failure is kept as `cause` (BRIEFDB_DEBUG=1 prints it).
 */
import type { FailureKind } from "../db/database.js";
import { errorChain, errorCode, isTlsRefused, rootMessage } from "../db/driver-errors.js";
import { BriefdbError, firstLine } from "../errors.js";

/** What the normaliser needs of a database: how its driver's errors read, and its redacted name. */
export interface FailureSource {
  readonly target: { readonly display: string };
  classify(error: unknown): FailureKind;
}

/**
 * Any thrown value as a BriefdbError. With the database it came from, a driver's error is read by
 * that dialect (unreachable, schema missing, …); whatever carries no driver's error code is not
 * the database's failure (a bug, or an error the caller's own operation threw): INTERNAL, never
 * DB_ERROR.
 */
export function toBriefdbError(error: unknown, source?: FailureSource): BriefdbError {
  if (error instanceof BriefdbError) return error;
  // briefdb's own refusal of a query (CLOSED, POOL_TIMEOUT), as drizzle wrapped it
  const own = errorChain(error).find((link): link is BriefdbError & Record<string, unknown> => link instanceof BriefdbError);
  if (own !== undefined) return own;
  const message = firstLine(rootMessage(error));
  const kind = source === undefined || !isDriverError(error) ? "internal" : source.classify(error);
  switch (kind) {
    case "internal":
      return new BriefdbError(
        "INTERNAL",
        `unexpected failure: ${message}`,
        "not a database failure: BRIEFDB_DEBUG=1 shows where it came from (from the CLI, it is a bug in briefdb: please report it)",
        { cause: error },
      );
    case "unreachable":
      if (isTlsRefused(error)) {
        return new BriefdbError(
          "DB_UNREACHABLE",
          `cannot reach ${source?.target.display} over TLS: the server does not accept TLS connections (${message})`,
          "turn TLS on at the server, or connect with sslmode=prefer (TLS when the server offers it) or sslmode=disable (a trusted network)",
          { cause: error },
        );
      }
      return new BriefdbError(
        "DB_UNREACHABLE",
        `cannot reach ${source?.target.display}: ${message}`,
        "check that the server is running and the URL is right (--db, DATABASE_URL)",
        { cause: error },
      );
    case "database_missing":
      return new BriefdbError(
        "DB_UNREACHABLE",
        `cannot use ${source?.target.display}: ${message}`,
        "the server is up but has no such database: create it, or fix the database name in the URL",
        { cause: error },
      );
    case "connection_lost":
      // a write that must say "outcome unknown" is read by its caller (core/tokens.ts) first
      return new BriefdbError(
        "DB_UNREACHABLE",
        `lost the connection to ${source?.target.display}: ${message}`,
        "check that the server is running, then try again",
        { cause: error },
      );
    case "auth_failed":
      return new BriefdbError(
        "AUTH_FAILED",
        `cannot sign in to ${source?.target.display}: ${message}`,
        "check the user and password in the URL (--db, DATABASE_URL)",
        { cause: error },
      );
    case "lock_timeout":
      return new BriefdbError(
        "LOCK_TIMEOUT",
        `gave up waiting for a lock another connection holds: ${message}; nothing changed`,
        "another session holds the rows (a long transaction?): try again, or wait longer with --lock-timeout <ms>",
        { cause: error },
      );
    case "read_only":
      return new BriefdbError(
        "READ_ONLY",
        `${source?.target.display} takes no writes (a standby, or default_transaction_read_only is on): ${message}; nothing changed`,
        "connect to the primary: list every server in the URL with ?target_session_attrs=read-write and briefdb picks the writable one",
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

/** Drivers' errors carry a code (SQLITE_…, a SQLSTATE, a socket's errno); Node's own ERR_… are bugs here. */
function isDriverError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && !code.startsWith("ERR_");
}

/**
 * `operation` as the library exports it (src/index.ts): whatever it throws leaves as a BriefdbError —
 * one it decided itself (OUTCOME_UNKNOWN, USER_NOT_FOUND, …) unchanged, a driver's error read by
 * the database it was called with (its first argument), the original kept as `cause`. Called with
 * a transaction instead of a database, a failure is left as it is for the transaction's owner
 * (withTransaction) to read: a transaction cannot say how its driver's errors read.
 */
export function throwingBriefdbErrors<A extends readonly unknown[], R>(operation: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  const boundary = async (...args: A): Promise<R> => {
    try {
      return await operation(...args);
    } catch (error) {
      const source = args[0];
      throw isFailureSource(source) ? toBriefdbError(error, source) : error;
    }
  };
  return Object.defineProperty(boundary, "name", { value: operation.name });
}

function isFailureSource(value: unknown): value is FailureSource {
  const candidate = value as Partial<FailureSource> | null;
  return typeof value === "object" && typeof candidate?.classify === "function" && typeof candidate.target === "object";
}
