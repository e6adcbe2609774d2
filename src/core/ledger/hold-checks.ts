/**
 * The invariants of token holds, checked against the data (by `tokens verify` for every user, by
 * `race-test --mode holds` for its user): a user's held_tokens is the sum of their active holds
 * and never exceeds the balance; every captured hold has exactly one ledger row, a deduct of what
 * was captured by the hold's user, and no other hold has any; no capture exceeds its hold.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Executor } from "../../db/database.js";

export interface HoldViolation {
  readonly rule: "held-matches-holds" | "held-within-balance" | "capture-has-one-ledger-row" | "capture-within-hold";
  readonly userId: string;
  /** The hold concerned; null for a rule about a user's totals. */
  readonly holdId: string | null;
  readonly detail: string;
}

/** Every violation, for all users or for one. */
export async function checkHolds(db: Executor, userId?: string): Promise<HoldViolation[]> {
  const onlyUser = (column: string): SQL => (userId === undefined ? sql`` : sql` AND ${sql.raw(column)} = ${userId}`);
  const users = await db.all<{ id: string; token_balance: number | string; held_tokens: number | string; active: number | string }>(sql`
    SELECT u.id, u.token_balance, u.held_tokens, COALESCE(a.total, 0) AS active
    FROM users u
    LEFT JOIN (SELECT user_id, SUM(amount) AS total FROM token_holds WHERE status = 'active' GROUP BY user_id) a ON a.user_id = u.id
    WHERE (u.held_tokens <> COALESCE(a.total, 0) OR u.held_tokens > u.token_balance OR COALESCE(a.total, 0) > u.token_balance)${onlyUser("u.id")}
    ORDER BY u.id`);
  const holds = await db.all<HoldCheckRow>(sql`
    SELECT h.id, h.user_id, h.status, h.amount, h.captured_amount, COUNT(t.id) AS ledger_rows, SUM(t.amount) AS charged,
      SUM(CASE WHEN t.user_id <> h.user_id OR t.type <> 'deduct' THEN 1 ELSE 0 END) AS strangers
    FROM token_holds h LEFT JOIN token_transactions t ON t.hold_id = h.id
    WHERE 1 = 1${onlyUser("h.user_id")}
    GROUP BY h.id, h.user_id, h.status, h.amount, h.captured_amount
    HAVING (h.status = 'captured' AND (COUNT(t.id) <> 1 OR COALESCE(SUM(t.amount), 0) <> -h.captured_amount))
      OR (h.status <> 'captured' AND COUNT(t.id) > 0)
      OR SUM(CASE WHEN t.user_id <> h.user_id OR t.type <> 'deduct' THEN 1 ELSE 0 END) > 0
      OR h.captured_amount > h.amount
    ORDER BY h.id`);
  return [...users.flatMap(userViolations), ...holds.flatMap(holdViolations)];
}

function userViolations(row: { id: string; token_balance: number | string; held_tokens: number | string; active: number | string }): HoldViolation[] {
  const [balance, heldTokens, active] = [Number(row.token_balance), Number(row.held_tokens), Number(row.active)];
  const found: HoldViolation[] = [];
  if (heldTokens !== active) {
    found.push({ rule: "held-matches-holds", userId: row.id, holdId: null, detail: `held_tokens ${heldTokens}, active holds sum to ${active}` });
  }
  if (Math.max(heldTokens, active) > balance) {
    found.push({ rule: "held-within-balance", userId: row.id, holdId: null, detail: `${Math.max(heldTokens, active)} held, balance ${balance}` });
  }
  return found;
}

/** A hold with what the ledger holds for it: its rows, what they charged, rows not its own kind. */
type HoldCheckRow = {
  readonly id: string;
  readonly user_id: string;
  readonly status: string;
  readonly amount: number | string;
  readonly captured_amount: number | string | null;
  readonly ledger_rows: number | string;
  readonly charged: number | string | null;
  readonly strangers: number | string | null;
};

function holdViolations(row: HoldCheckRow): HoldViolation[] {
  const found: HoldViolation[] = [];
  const captured = row.captured_amount === null ? null : Number(row.captured_amount);
  const rows = Number(row.ledger_rows);
  const charged = -Number(row.charged ?? 0);
  const base = { userId: row.user_id, holdId: row.id };
  if (row.status === "captured" ? rows !== 1 || charged !== captured || Number(row.strangers ?? 0) > 0 : rows > 0) {
    found.push({
      ...base,
      rule: "capture-has-one-ledger-row",
      detail: `${row.status} hold has ${rows} ledger row(s) charging ${charged}${captured === null ? "" : `, captured ${captured}`}`,
    });
  }
  if (captured !== null && captured > Number(row.amount)) {
    found.push({ ...base, rule: "capture-within-hold", detail: `captured ${captured} of a hold of ${Number(row.amount)}` });
  }
  return found;
}
