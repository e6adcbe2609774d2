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
import type { ApplyOptions, LedgerEntry } from "./database.js";
import { dateFromEpochMs } from "./inspection.js";
import type { FailedChange } from "./ledger-batcher.js";

export type HoldStatus = "active" | "captured" | "released" | "expired";

/** One row of token_holds. */
export interface HoldRecord {
  readonly id: string;
  readonly userId: string;
  readonly amount: number;
  readonly status: HoldStatus;
  /** What the capture charged; null unless captured. */
  readonly capturedAmount: number | null;
  readonly reason: string;
  readonly briefId: string | null;
  readonly idempotencyKey: string | null;
  readonly expiresAt: Date;
  readonly createdAt: Date;
  readonly settledAt: Date | null;
}

export interface NewHold {
  readonly id: string;
  readonly userId: string;
  readonly amount: number;
  readonly reason: string;
  readonly briefId: string | null;
  readonly idempotencyKey: string | null;
  readonly ttlSeconds: number;
}

export interface PlacedHold {
  readonly hold: HoldRecord;
  readonly balance: number;
  /** Active, unexpired holds right after this one was placed (this one included). */
  readonly held: number;
}

export interface CapturedHold {
  readonly hold: HoldRecord;
  readonly entry: LedgerEntry;
}

/** A capture as the batcher carries it: the hold, its user (for the batcher's lanes), what to charge, the new ledger row's id. */
export interface NewCapture {
  readonly holdId: string;
  readonly userId: string;
  /** null: all of the hold. */
  readonly amount: number | null;
  readonly ledgerId: string;
}

/** A change the hold batcher carries (PostgreSQL, issue 11). */
export type HoldChange = { readonly kind: "place"; readonly hold: NewHold } | { readonly kind: "capture"; readonly capture: NewCapture };

/**
 * What became of a batched hold: placed; refused by its guard, with what the guard saw (balance
 * null: no such user); or failed (a missing brief fails that hold alone, as the server's 23503).
 */
export type PlaceOutcome =
  | { readonly kind: "placed"; readonly placed: PlacedHold }
  | { readonly kind: "refused"; readonly balance: number | null; readonly heldTokens: number; readonly decidedAtMs?: number }
  | FailedChange;

/** What became of a batched capture: captured, or not capturable (core reads the hold to say why), or failed. */
export type CaptureOutcome = { readonly kind: "captured"; readonly captured: CapturedHold } | { readonly kind: "not_captured" } | FailedChange;

export type HoldOutcome = PlaceOutcome | CaptureOutcome;

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
