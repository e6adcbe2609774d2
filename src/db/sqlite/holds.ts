/**
 * Token holds on SQLite: each write is one synchronous IMMEDIATE transaction (the write lock is
 * taken first, so every write of every process is serialised and reads what committed before
 * it). Time is the database's clock, read inside the transaction: for an embedded database that
 * is the operating system's clock, the one SQLite's own 'now' reads.
 */
import { sql } from "drizzle-orm";
import type { HoldRow, HoldStatements, NewHold, PlacedHold, CapturedHold, HoldRecord, TransactionHolds } from "../holds.js";
import { holdFromRow } from "../holds.js";
import { immediateUnlessAborted, type SqliteConnection } from "./connection.js";
import { ledgerStamper } from "./ledger-stamp.js";

const HOLD_COLUMNS = `id, user_id, amount, status, captured_amount, reason, brief_id, idempotency_key,
  expires_at AS expires_at_ms, created_at AS created_at_ms, settled_at AS settled_at_ms`;

export function sqliteHolds(connection: SqliteConnection): HoldStatements & { readonly inTransaction: TransactionHolds } {
  const client = connection.client;
  const reserve = client.prepare<[number, number, string, number]>(
    `UPDATE users SET held_tokens = held_tokens + ?, updated_at = ?
     WHERE id = ? AND token_balance - held_tokens >= ?
     RETURNING token_balance, held_tokens`,
  );
  const insertHold = client.prepare(
    `INSERT INTO token_holds (id, user_id, amount, status, reason, brief_id, idempotency_key, expires_at, created_at)
     VALUES (@id, @userId, @amount, 'active', @reason, @briefId, @idempotencyKey, @expiresAt, @now)`,
  );
  const expiredHeld = client.prepare<[string, number]>(
    `SELECT COALESCE(SUM(amount), 0) AS total FROM token_holds WHERE user_id = ? AND status = 'active' AND expires_at <= ?`,
  );
  const settleCapture = client.prepare<[number | null, number, string, number, number | null]>(
    `UPDATE token_holds SET status = 'captured', captured_amount = COALESCE(?, amount), settled_at = ?
     WHERE id = ? AND status = 'active' AND expires_at > ? AND amount >= COALESCE(?, amount)
     RETURNING ${HOLD_COLUMNS}`,
  );
  const charge = client.prepare<[number, number, number, string]>(
    `UPDATE users SET token_balance = token_balance - ?, held_tokens = held_tokens - ?, updated_at = ?
     WHERE id = ? RETURNING token_balance`,
  );
  const insertCapture = client.prepare(
    `INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, hold_id, created_at)
     VALUES (@id, @userId, @amount, 'deduct', @reason, @briefId, @balanceAfter, NULL, @holdId, @now)`,
  );
  const settleRelease = client.prepare<[number, number, string]>(
    `UPDATE token_holds SET status = CASE WHEN expires_at > ? THEN 'released' ELSE 'expired' END, settled_at = ?
     WHERE id = ? AND status = 'active'
     RETURNING ${HOLD_COLUMNS}`,
  );
  const unhold = client.prepare<[number, number, string]>(`UPDATE users SET held_tokens = held_tokens - ?, updated_at = ? WHERE id = ?`);
  const sweep = client.prepare<[number, string, number]>(
    `UPDATE token_holds SET status = 'expired', settled_at = ?
     WHERE user_id = ? AND status = 'active' AND expires_at <= ?
     RETURNING amount`,
  );

  const stampAfterNewest = ledgerStamper(client);

  const placeTx = client.transaction((hold: NewHold): PlacedHold | undefined => {
    const now = Date.now();
    const reserved = reserve.get(hold.amount, now, hold.userId, hold.amount) as
      | { token_balance: number; held_tokens: number }
      | undefined;
    if (reserved === undefined) return undefined;
    const expiresAt = now + hold.ttlSeconds * 1000;
    insertHold.run({ ...hold, expiresAt, now });
    const { ttlSeconds: _ttl, ...placed } = hold;
    const record: HoldRecord = { ...placed, status: "active", capturedAmount: null, expiresAt: new Date(expiresAt), createdAt: new Date(now), settledAt: null };
    // only when other holds are active can one of them have expired
    const expired = reserved.held_tokens > hold.amount ? (expiredHeld.get(hold.userId, now) as { total: number }).total : 0;
    return { hold: record, balance: reserved.token_balance, held: reserved.held_tokens - expired };
  });

  const captureTx = client.transaction((holdId: string, amount: number | null, ledgerId: string): CapturedHold | undefined => {
    const now = Date.now();
    const row = settleCapture.get(amount, now, holdId, now, amount) as HoldRow | undefined;
    if (row === undefined) return undefined;
    const hold = holdFromRow(row);
    const captured = hold.capturedAmount ?? hold.amount;
    const charged = charge.get(captured, hold.amount, now, hold.userId) as { token_balance: number };
    const stamp = stampAfterNewest(hold.userId, ledgerId, now);
    const entry = {
      id: stamp.id,
      userId: hold.userId,
      amount: -captured,
      type: "deduct" as const,
      reason: hold.reason,
      briefId: hold.briefId,
      balanceAfter: charged.token_balance,
      idempotencyKey: null,
      holdId: hold.id,
      createdAt: new Date(stamp.createdAt),
    };
    insertCapture.run({ ...entry, now: stamp.createdAt });
    return { hold, entry };
  });

  const releaseTx = client.transaction((holdId: string): HoldRecord | undefined => {
    const now = Date.now();
    const row = settleRelease.get(now, now, holdId) as HoldRow | undefined;
    if (row === undefined) return undefined;
    const hold = holdFromRow(row);
    unhold.run(hold.amount, now, hold.userId);
    return hold;
  });

  const sweepTx = client.transaction((userId: string): number => {
    const now = Date.now();
    const swept = sweep.all(now, userId, now) as Array<{ amount: number }>;
    if (swept.length > 0) unhold.run(swept.reduce((total, r) => total + r.amount, 0), now, userId);
    return swept.length;
  });

  return {
    clock: sql.raw("CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"),
    place: (hold, { signal } = {}) => immediateUnlessAborted(connection, () => placeTx.immediate(hold), signal),
    capture: (holdId, amount, ledgerId, { signal } = {}) =>
      immediateUnlessAborted(connection, () => captureTx.immediate(holdId, amount, ledgerId), signal),
    release: (holdId, { signal } = {}) => immediateUnlessAborted(connection, () => releaseTx.immediate(holdId), signal),
    sweepExpired: (userId) => connection.exclusive(() => sweepTx.immediate(userId)),
    // inside the open transaction better-sqlite3 runs it as a savepoint
    inTransaction: { sweepExpired: async (userId) => sweepTx(userId) },
  };
}
