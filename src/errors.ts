/**
 * One error type for the whole tool, carrying a code from the contract's table
 * (docs/architecture.md, "Exit codes"). The CLI maps the code to an exit code through EXIT_CODES;
 * library callers read `code` and `hint`.
 */

export const EXIT_CODES = {
  DB_UNREACHABLE: 1,
  /** The server refused the user or password (PostgreSQL 28P01, 28000). */
  AUTH_FAILED: 1,
  /** Gave up waiting for a lock another connection holds (--lock-timeout; SQLite's busy timeout). */
  LOCK_TIMEOUT: 1,
  DB_ERROR: 1,
  INVARIANT_VIOLATED: 1,
  GATE_FAILED: 1,
  NOT_MIGRATED: 1,
  UNHEALTHY: 1,
  /** A failure that is not the database's nor the input's: a bug in briefdb. */
  INTERNAL: 1,
  /**
   * A pooled connection was not free within poolTimeoutMs (PostgreSQL): the call was never sent,
   * nothing changed.
   */
  POOL_TIMEOUT: 1,
  USAGE: 2,
  /**
   * A call on the database from inside withTransaction whose enclosing transactions hold every
   * connection of the pool (PostgreSQL): it could only wait for itself, so it is refused at once.
   */
  POOL_DEADLOCK: 2,
  /** A call on a database after its close(): nothing changed. */
  CLOSED: 2,
  INVALID_AMOUNT: 2,
  INVALID_URL: 2,
  INVALID_HOLD_ID: 2,
  INSUFFICIENT_BALANCE: 3,
  USER_NOT_FOUND: 3,
  NOT_LOCAL: 3,
  CONFIRMATION_REQUIRED: 3,
  IDEMPOTENCY_CONFLICT: 3,
  BALANCE_OVERFLOW: 3,
  BRIEF_NOT_FOUND: 3,
  HOLD_NOT_FOUND: 3,
  HOLD_SETTLED: 3,
  HOLD_EXPIRED: 3,
  CAPTURE_EXCEEDS_HOLD: 3,
  /**
   * Needs a session of its own, which a transaction pooler (PgBouncer, Supavisor in transaction
   * mode) cannot give: an online index build in `migrate`.
   */
  SESSION_REQUIRED: 3,
  /**
   * The server takes no writes (PostgreSQL 25006): a standby, or a primary whose
   * default_transaction_read_only is on. The write was refused: nothing changed.
   */
  READ_ONLY: 3,
  /**
   * The connection was lost after a write was sent: it may or may not have been applied. Its own
   * status, so that a script never mistakes it for "nothing changed" nor for success.
   */
  OUTCOME_UNKNOWN: 4,
  /** Interrupted (SIGINT; the CLI exits 143 for SIGTERM, 129 for SIGHUP); nothing changed. */
  CANCELLED: 130,
} as const;

export type ErrorCode = keyof typeof EXIT_CODES;

export class BriefdbError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BriefdbError";
    this.code = code;
    this.hint = hint;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string } {
    return this.hint === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, hint: this.hint };
  }
}

export function isBriefdbError(value: unknown): value is BriefdbError {
  return value instanceof BriefdbError;
}

export function firstLine(text: string): string {
  const line = text.split("\n", 1)[0] ?? "";
  return line.trim();
}
