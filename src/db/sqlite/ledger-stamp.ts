/**
 * Where a new ledger row goes in its user's history on SQLite: after every row already there.
 * Rows are stamped in milliseconds inside the write lock, so history order (created_at, then id)
 * is apply order except for a tie: two connections applying rows of one user in one millisecond,
 * broken by ids made at the calls, in whatever order their processes' sequences started. Read
 * under the same write lock, the user's newest row settles it: a row of the same millisecond
 * takes an id after that row's (and a clock that went back is read as the newest row's time).
 */
import type Database from "better-sqlite3";
import { idAfter } from "../../core/ids.js";

export interface LedgerStamp {
  readonly id: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

/** Must run inside the write transaction that inserts the row. */
export type StampAfterNewest = (userId: string, id: string, now: number) => LedgerStamp;

export function ledgerStamper(client: Database.Database): StampAfterNewest {
  const newest = client.prepare<[string], { created_at: number; id: string }>(
    "SELECT created_at, id FROM token_transactions WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
  );
  return (userId, id, now) => {
    const last = newest.get(userId);
    if (last === undefined || last.created_at < now) return { id, createdAt: now };
    if (id > last.id) return { id, createdAt: last.created_at };
    const after = idAfter(last.id);
    // an id not briefdb's (no UUIDv7 to follow): the next millisecond instead
    return after === undefined ? { id, createdAt: last.created_at + 1 } : { id: after, createdAt: last.created_at };
  };
}
