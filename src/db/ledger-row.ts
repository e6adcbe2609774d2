/** Ledger rows as the drivers return them (snake_case, bigints as strings on PostgreSQL) → LedgerEntry. */
import type { BalanceChange, LedgerEntry, TokenOperation } from "./ledger-values.js";
import { dateFromEpochMs } from "./inspection.js";

export interface LedgerRow {
  readonly id: string;
  readonly user_id: string;
  readonly amount: number | string;
  readonly type: string;
  readonly reason: string;
  readonly brief_id: string | null;
  readonly balance_after: number | string;
  readonly idempotency_key: string | null;
  readonly hold_id?: string | null;
  /** created_at as epoch milliseconds (see BriefDatabase.time.epochMs). */
  readonly created_at_ms: number | string;
  readonly [column: string]: unknown;
}

export function ledgerEntryFromRow(row: LedgerRow): LedgerEntry {
  return {
    id: row.id,
    userId: row.user_id,
    amount: Number(row.amount),
    type: row.type as TokenOperation,
    reason: row.reason,
    briefId: row.brief_id,
    balanceAfter: Number(row.balance_after),
    idempotencyKey: row.idempotency_key,
    holdId: row.hold_id ?? null,
    createdAt: dateFromEpochMs(row.created_at_ms),
  };
}

/** The ledger row a change writes, once the database has said the balance after it and when. */
export function ledgerEntryOf(change: BalanceChange, balanceAfter: number, createdAt: Date): LedgerEntry {
  return {
    id: change.id,
    userId: change.userId,
    amount: change.operation === "deduct" ? -change.amount : change.amount,
    type: change.operation,
    reason: change.reason,
    briefId: change.briefId,
    balanceAfter,
    idempotencyKey: change.idempotencyKey,
    holdId: null,
    createdAt,
  };
}
