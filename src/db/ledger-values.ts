/**
 * The values the token ledger and holds pass around: the changes asked for, the rows written, and
 * what became of a batched change. A leaf: the dialect contract, the batcher and both dialects
 * import it, and it imports nothing of theirs.
 */

export type TokenOperation = "credit" | "deduct";

/** A balance change to apply with its ledger row, as one atomic unit. */
export interface BalanceChange {
  readonly id: string;
  readonly userId: string;
  readonly operation: TokenOperation;
  /** Positive: how much to add (credit) or take (deduct). */
  readonly amount: number;
  readonly reason: string;
  readonly briefId: string | null;
  readonly idempotencyKey: string | null;
}

/** One row of the token ledger. */
export interface LedgerEntry {
  readonly id: string;
  readonly userId: string;
  /** Signed: + credit, − deduct. */
  readonly amount: number;
  readonly type: TokenOperation;
  readonly reason: string;
  readonly briefId: string | null;
  readonly balanceAfter: number;
  readonly idempotencyKey: string | null;
  /** The hold this row captured; null for plain credits and deducts. */
  readonly holdId: string | null;
  readonly createdAt: Date;
}

export interface ApplyOptions {
  /**
   * Aborting it stops the change if it can still be stopped: PostgreSQL sends the protocol's
   * cancel request for the statement in flight (it then rejects with a "cancelled" failure, or
   * resolves when it had committed first); SQLite stops waiting for the write lock (rejects with
   * the signal's reason). Once the change is applied, aborting changes nothing.
   */
  readonly signal?: AbortSignal;
}

/** What every batched change may come to: its batch failed as a whole (or answered no outcome for it). */
export interface FailedChange {
  readonly kind: "failed";
  readonly error: unknown;
}

/** A guard refused the change; what it saw (balance null: no such user). */
export interface Refusal {
  readonly kind: "refused";
  readonly balance: number | null;
  readonly heldTokens: number;
  /** When the guard refused, by the database's clock (ms since the epoch); absent when unknown. */
  readonly decidedAtMs?: number;
}

/**
 * What became of one change in a batch, each decided on its own, in the order the changes were
 * submitted. Applied: its ledger row. Replayed: its idempotency key already had a row, and the
 * caller decides between replay and conflict. Refused by its guard. Failed with the driver's
 * error, which no other change of the batch shares unless the whole batch failed (a lost
 * connection, a deadlock, a failed commit).
 */
export type BatchOutcome =
  | { readonly kind: "applied"; readonly entry: LedgerEntry }
  | { readonly kind: "replayed"; readonly entry: LedgerEntry }
  | Refusal
  | FailedChange;

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

/** A change the hold batcher carries (PostgreSQL). */
export type HoldChange = { readonly kind: "place"; readonly hold: NewHold } | { readonly kind: "capture"; readonly capture: NewCapture };

/**
 * What became of a batched hold: placed; refused by its guard, with what the guard saw (balance
 * null: no such user); or failed (a missing brief fails that hold alone, as the server's 23503).
 */
export type PlaceOutcome = { readonly kind: "placed"; readonly placed: PlacedHold } | Refusal | FailedChange;

/** What became of a batched capture: captured, or not capturable (core reads the hold to say why), or failed. */
export type CaptureOutcome = { readonly kind: "captured"; readonly captured: CapturedHold } | { readonly kind: "not_captured" } | FailedChange;

export type HoldOutcome = PlaceOutcome | CaptureOutcome;
