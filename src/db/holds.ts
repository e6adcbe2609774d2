/**
 * What every dialect provides for token holds: the four writes that must be atomic (place,
 * capture, release, sweep), and the row shape they return. Each write is decided on the rows it
 * changes — the user row for "is there room", the hold row for "is it still active" — so that a
 * write waiting on a lock re-checks against the newest committed state (PostgreSQL re-reads the
 * rows an UPDATE changes, never a sub-select's). Every change to a user's active holds changes
 * `users.held_tokens` in the same statement, so the user row is where holds, deducts and captures
 * of one user meet. Place, capture and release take a signal as a deduct does (ApplyOptions): an
 * abort stops the write if it can still be stopped, never after it was applied.
 */
import type { SQL } from "drizzle-orm";
import { dateFromEpochMs } from "./inspection.js";
import type {
  ApplyOptions,
  CapturedHold,
  CaptureOutcome,
  HoldRecord,
  HoldStatus,
  NewHold,
  PlacedHold,
  PlaceOutcome,
} from "./ledger-values.js";

export type {
  CapturedHold,
  CaptureOutcome,
  HoldChange,
  HoldOutcome,
  HoldRecord,
  HoldStatus,
  NewCapture,
  NewHold,
  PlacedHold,
  PlaceOutcome,
} from "./ledger-values.js";

export interface HoldStatements {
  /** The database's clock as a value of the schema's timestamp columns (holds expire by it). */
  readonly clock: SQL;
  /**
   * Places the hold when balance − held_tokens ≥ amount, in one atomic step with the user's
   * held_tokens; undefined when refused (no such user or no room: holds that expired but are not
   * yet swept still take room here). Rejects with a unique violation when the key is taken.
   */
  place(hold: NewHold, options?: ApplyOptions): Promise<PlacedHold | undefined>;
  /**
   * Captures `amount` (≤ the hold; null: all of it) of an active, unexpired hold: the hold settles as captured,
   * the balance drops by `amount`, held_tokens by the whole hold, and one deduct ledger row
   * naming the hold is written — all or nothing. undefined when the hold was not capturable.
   */
  capture(holdId: string, amount: number | null, ledgerId: string, options?: ApplyOptions): Promise<CapturedHold | undefined>;
  /** Settles an active hold as released (or as expired when past its expiry); undefined when not active. */
  release(holdId: string, options?: ApplyOptions): Promise<HoldRecord | undefined>;
  /** Settles the user's active holds that are past their expiry as expired; resolves to how many. */
  sweepExpired(userId: string): Promise<number>;
  /**
   * Present when the database batches holds (PostgreSQL, `OpenOptions.batch`): queues a hold
   * without an idempotency key with those placed and captured beside it (see PlaceOutcome).
   * Never for a call with a signal.
   */
  submitPlace?(hold: NewHold): Promise<PlaceOutcome>;
  /**
   * As submitPlace, for a capture of a hold this database object placed; undefined when it does
   * not know the hold's user (placed by another process, or long ago): capture it on its own.
   */
  submitCapture?(holdId: string, amount: number | null, ledgerId: string): Promise<CaptureOutcome> | undefined;
}

/** What a caller's transaction can do about holds: settle the user's expired ones, inside it. */
export type TransactionHolds = Pick<HoldStatements, "sweepExpired">;

/** A hold row as the drivers return it: snake_case, timestamps as epoch milliseconds. */
export interface HoldRow {
  readonly id: string;
  readonly user_id: string;
  readonly amount: number | string;
  readonly status: string;
  readonly captured_amount: number | string | null;
  readonly reason: string;
  readonly brief_id: string | null;
  readonly idempotency_key: string | null;
  readonly expires_at_ms: number | string;
  readonly created_at_ms: number | string;
  readonly settled_at_ms: number | string | null;
  readonly [column: string]: unknown;
}

export function holdFromRow(row: HoldRow): HoldRecord {
  return {
    id: row.id,
    userId: row.user_id,
    amount: Number(row.amount),
    status: row.status as HoldStatus,
    capturedAmount: row.captured_amount === null ? null : Number(row.captured_amount),
    reason: row.reason,
    briefId: row.brief_id,
    idempotencyKey: row.idempotency_key,
    expiresAt: dateFromEpochMs(row.expires_at_ms),
    createdAt: dateFromEpochMs(row.created_at_ms),
    settledAt: row.settled_at_ms === null ? null : dateFromEpochMs(row.settled_at_ms),
  };
}
