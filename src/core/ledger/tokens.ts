/**
 * Token credits and deductions: one atomic conditional statement and its ledger row per
 * operation, exactly once per idempotency key, with refusals told apart (no such user, too little
 * balance, overflow). Balances, history and reconciliation of balances against the ledger.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase, Executor, LedgerEntry, TokenOperation, Transaction } from "../../db/database.js";
import { rootMessage } from "../../db/driver-errors.js";
import { BriefdbError, firstLine } from "../../errors.js";
import { assertAmount } from "./amount.js";
import { toBriefdbError } from "../failures.js";
import { checkHolds, type HoldViolation } from "./hold-checks.js";
import { checkLedgerOrder, ledgerOrderedSince, type LedgerOutOfOrder } from "./order-check.js";
import { whyNoRoom, whyNoRoomInBatch } from "./holds.js";
import { newId } from "../ids.js";
import { checkStoredText } from "./text-input.js";
import { counted } from "./counters.js";
import { userTokenHistory } from "../queries/listings.js";
import { asResult, type Result } from "./transaction.js";
import { backOff } from "../../retry.js";

export type { LedgerEntry, TokenOperation } from "../../db/database.js";

export interface TokenOperationOptions {
  readonly briefId?: string;
  /** A repeat with the same key, user, operation and amount returns the first result unchanged. */
  readonly idempotencyKey?: string;
  /**
   * Apply inside this transaction of `withTransaction`, so that it commits or rolls back with the
   * app's own queries there. A refusal then throws (applyTokenOperation) and rolls back the lot.
   */
  readonly transaction?: Transaction;
  /**
   * Aborting it interrupts the operation if it can still be stopped (on PostgreSQL a cancel
   * request for the statement in flight): it then rejects with CANCELLED and nothing changed, or
   * resolves as usual when the change had been applied first.
   */
  readonly signal?: AbortSignal;
}

export interface TokenOperationResult {
  readonly userId: string;
  readonly operation: TokenOperation;
  readonly amount: number;
  /** The balance right after this operation (for a replay: after the first application). */
  readonly balance: number;
  readonly transactionId: string;
  readonly replayed: boolean;
  readonly reason: string;
  readonly briefId: string | null;
  readonly createdAt: Date;
}

const OPERATIONS: readonly TokenOperation[] = ["credit", "deduct"];
/** Tries of one operation when a serialization failure or a contradicted refusal sends it round again. */
const ATTEMPTS = 10;

/** atomicTokenOperation, the app's name for a token change: never throws, returns { success, data | error }. */
export async function atomicTokenOperation(
  db: BriefDatabase,
  userId: string,
  operation: TokenOperation,
  amount: number,
  reason: string,
  options: TokenOperationOptions = {},
): Promise<Result<TokenOperationResult>> {
  return asResult(db, () => applyTokenOperation(db, userId, operation, amount, reason, options));
}

/** As atomicTokenOperation, but throws the BriefdbError instead of returning it. */
export async function applyTokenOperation(
  db: BriefDatabase,
  userId: string,
  operation: TokenOperation,
  amount: number,
  reason: string,
  options: TokenOperationOptions = {},
): Promise<TokenOperationResult> {
  return counted(operation, () => applyOnce(db, userId, operation, amount, reason, options));
}

async function applyOnce(
  db: BriefDatabase,
  userId: string,
  operation: TokenOperation,
  amount: number,
  reason: string,
  options: TokenOperationOptions,
): Promise<TokenOperationResult> {
  checkInput(userId, operation, amount, reason, options);
  const key = options.idempotencyKey ?? null;
  const ledger = options.transaction?.ledger ?? db.ledger;
  const reader: Executor = options.transaction ?? db;
  // on its own the statement is its whole transaction: it can be run again, and a lost
  // connection leaves its outcome unknown; inside the app's transaction neither holds
  const standalone = options.transaction === undefined;
  const signal = options.signal;
  const change = { id: newId(), userId, operation, amount, reason, briefId: options.briefId ?? null, idempotencyKey: key };
  // what a failed attempt means: the result of a replay, or "again" (rolled back, run it again), or it throws
  const judge = async (error: unknown, attempt: number): Promise<TokenOperationResult | "again"> => {
    const kind = db.classify(error);
    // the cancel request won, or the wait for a lock was given up: the change was not applied
    if (signal?.aborted && (error === signal.reason || kind === "cancelled")) throw interrupted(operation);
    if (kind === "retryable" && standalone && attempt < ATTEMPTS) {
      // a serialization failure or deadlock rolled the statement back: run it again
      await backOff(attempt);
      return "again";
    }
    if (kind === "unique_violation" && key !== null) {
      // another caller applied this key between our look-up and our write: theirs stands
      const prior = await ledger.findByKey(key);
      if (prior) return replay(prior, userId, operation, amount);
    }
    if (kind === "foreign_key_violation" && options.briefId !== undefined) {
      throw new BriefdbError("BRIEF_NOT_FOUND", `no brief with id "${options.briefId}"; nothing changed`);
    }
    if (kind === "connection_lost" && standalone) throw outcomeUnknown(db, userId, operation, key, error);
    throw toBriefdbError(error, db);
  };
  let first = 1;
  if (standalone && signal === undefined && ledger.submit !== undefined) {
    // batched with the operations called beside it; the key is looked up inside the batch, so
    // that operations are applied in the order they were called
    const outcome = await ledger.submit(change);
    if (outcome.kind === "applied") return resultOf(outcome.entry, false);
    if (outcome.kind === "replayed") return replay(outcome.entry, userId, operation, amount);
    if (outcome.kind === "refused") {
      const refused = batchedRefusal(outcome, userId, operation, amount);
      if (refused !== undefined) throw refused;
      if (operation === "deduct" && outcome.balance !== null && outcome.balance - outcome.heldTokens < amount) {
        // held tokens took the room the guard looked for: refused at its place in the call order
        // (unless expired holds were among them: swept, then tried again below)
        const held = await whyNoRoomInBatch(db, userId, "deduct", amount, {
          balance: outcome.balance,
          heldTokens: outcome.heldTokens,
          ...(outcome.decidedAtMs === undefined ? {} : { decidedAtMs: outcome.decidedAtMs }),
        });
        if (held !== undefined) throw held;
      }
      // the balance read beside the refusal contradicts it (PostgreSQL: the guard saw a newer
      // row than the statement's snapshot), or holds are involved: tried again on its own, as below
    } else {
      // final: the dialect already ran the batch again in order where that was safe (a deadlock,
      // a lock that may be another change's); tried again here on its own, the change could
      // overtake the calls after it on its user
      const judged = await judge(outcome.error, ATTEMPTS);
      if (judged !== "again") return judged;
    }
    first = 2;
  }
  if (key !== null) {
    const prior = await ledger.findByKey(key);
    if (prior) return replay(prior, userId, operation, amount);
  }
  for (let attempt = first; ; attempt++) {
    if (signal?.aborted) throw interrupted(operation);
    let entry: LedgerEntry | undefined;
    try {
      entry = await ledger.apply(change, signal === undefined ? {} : { signal });
    } catch (error) {
      const judged = await judge(error, attempt);
      if (judged === "again") continue;
      return judged;
    }
    if (entry !== undefined) return resultOf(entry, false);
    const refused =
      operation === "deduct"
        ? await whyNoRoom(db, userId, "deduct", amount, { reader, holds: options.transaction?.holds ?? db.holds })
        : await creditRefusal(reader, userId, amount);
    if (refused !== undefined) throw refused;
    // the re-read contradicts the refusal: the row changed in between (deleted and inserted again,
    // say), or expired holds were just swept to make room, so the refusal would not be true; the
    // change was not applied, so it is tried again
    if (attempt >= ATTEMPTS) {
      throw new BriefdbError(
        "DB_ERROR",
        `user ${userId} kept changing while the ${operation} was tried ${ATTEMPTS} times; nothing changed`,
        "something rewrites this user's row (a re-seed?): try again when it is done",
      );
    }
  }
}

export async function getBalance(db: BriefDatabase, userId: string): Promise<number> {
  const balance = await currentBalance(db, userId);
  if (balance === undefined) throw userNotFound(userId);
  return balance;
}

/** The user's ledger, newest first (the canonical, monitored listing query). */
export async function getHistory(db: BriefDatabase, userId: string, options: { limit?: number } = {}): Promise<LedgerEntry[]> {
  const entries = await userTokenHistory(db, userId, options.limit === undefined ? {} : { limit: options.limit });
  if (entries.length === 0 && (await currentBalance(db, userId)) === undefined) throw userNotFound(userId);
  return entries;
}

export interface Drift {
  readonly userId: string;
  readonly balance: number;
  readonly ledgerSum: number;
  /** balance − ledgerSum */
  readonly difference: number;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** How many users were reconciled. */
  readonly checked: number;
  readonly drifting: readonly Drift[];
  /** Broken hold invariants (see checkHolds). */
  readonly holdViolations: readonly HoldViolation[];
  /**
   * Users whose balance_after is not the running balance in history order (see checkLedgerOrder);
   * those marked legacy (every such row stamped before orderedSince) are reported without failing
   * the check.
   */
  readonly outOfOrder: readonly LedgerOutOfOrder[];
  /**
   * When this database applied migration 0003_ledger_stamped_at_insert, from which briefdb (and an
   * app's SQL that leaves created_at to the column) stamps ledger rows in apply order.
   */
  readonly orderedSince: Date;
}

/**
 * Reconciles every balance against the sum of its ledger (the ledger invariant, docs/architecture.md
 * "Invariants"), checks that each balance_after is the running balance in history order, and checks
 * the holds: held within the balance, one ledger row per captured hold, no capture over its hold.
 */
export async function verifyLedger(db: BriefDatabase): Promise<VerifyReport> {
  // first: a database that never applied the ordering migration is refused before any scan
  const orderedSince = await ledgerOrderedSince(db);
  const [count] = await db.all<{ n: number | string }>(sql`SELECT count(*) AS n FROM users`);
  const rows = await db.all<{ id: string; token_balance: number | string; ledger_sum: number | string }>(sql`
    SELECT u.id, u.token_balance, COALESCE(l.total, 0) AS ledger_sum
    FROM users u
    LEFT JOIN (SELECT user_id, SUM(amount) AS total FROM token_transactions GROUP BY user_id) l ON l.user_id = u.id
    WHERE u.token_balance <> COALESCE(l.total, 0)
    ORDER BY u.id`);
  const drifting = rows.map((row) => {
    const balance = Number(row.token_balance);
    const ledgerSum = Number(row.ledger_sum);
    return { userId: row.id, balance, ledgerSum, difference: balance - ledgerSum };
  });
  const holdViolations = await checkHolds(db);
  const outOfOrder = await checkLedgerOrder(db, orderedSince);
  const ok = drifting.length === 0 && holdViolations.length === 0 && outOfOrder.every((user) => user.legacy);
  return { ok, checked: Number(count?.n ?? 0), drifting, holdViolations, outOfOrder, orderedSince };
}

function checkInput(userId: string, operation: TokenOperation, amount: number, reason: string, options: TokenOperationOptions): void {
  if (!OPERATIONS.includes(operation)) {
    throw new BriefdbError("USAGE", `unknown token operation "${String(operation)}": use credit or deduct`);
  }
  assertAmount(amount);
  checkStoredText({ userId, reason, briefId: options.briefId, idempotencyKey: options.idempotencyKey });
}

function replay(prior: LedgerEntry, userId: string, operation: TokenOperation, amount: number): TokenOperationResult {
  if (prior.userId !== userId || prior.type !== operation || Math.abs(prior.amount) !== amount) {
    throw new BriefdbError(
      "IDEMPOTENCY_CONFLICT",
      `idempotency key "${prior.idempotencyKey}" was used for ${prior.type} ${Math.abs(prior.amount)} on user ${prior.userId}; refused ${operation} ${amount} on user ${userId}`,
      "use a new key for a new operation",
    );
  }
  return resultOf(prior, true);
}

function resultOf(entry: LedgerEntry, replayed: boolean): TokenOperationResult {
  return {
    userId: entry.userId,
    operation: entry.type,
    amount: Math.abs(entry.amount),
    balance: entry.balanceAfter,
    transactionId: entry.id,
    replayed,
    reason: entry.reason,
    briefId: entry.briefId,
    createdAt: entry.createdAt,
  };
}

/**
 * Why the credit's conditional UPDATE matched no row (nothing was changed), read afresh; undefined
 * when the row read now would have matched (a concurrent change), so that no refusal is reported
 * untrue. A deduct's refusal is whyNoRoom's (holds.ts): it knows the held tokens.
 */
async function creditRefusal(db: Executor, userId: string, amount: number): Promise<BriefdbError | undefined> {
  return overflowAt(await currentBalance(db, userId), userId, amount);
}

/**
 * The refusal of a batched change from what its guard saw in the batch (balance null: no such
 * user); undefined when that does not explain the refusal or held tokens are involved (expired
 * holds may be swept to make room): the change is then judged again on its own, unbatched.
 */
function batchedRefusal(
  seen: { readonly balance: number | null; readonly heldTokens: number },
  userId: string,
  operation: TokenOperation,
  amount: number,
): BriefdbError | undefined {
  if (seen.balance === null) return userNotFound(userId);
  if (operation === "credit") return overflowAt(seen.balance, userId, amount);
  if (seen.heldTokens > 0 || seen.balance >= amount) return undefined;
  return new BriefdbError("INSUFFICIENT_BALANCE", `user ${userId} has ${seen.balance} tokens, cannot deduct ${amount}; nothing changed`);
}

function overflowAt(balance: number | undefined, userId: string, amount: number): BriefdbError | undefined {
  if (balance === undefined) return userNotFound(userId);
  if (balance <= Number.MAX_SAFE_INTEGER - amount) return undefined;
  return new BriefdbError(
    "BALANCE_OVERFLOW",
    `crediting ${amount} to user ${userId} (balance ${balance}) would pass ${Number.MAX_SAFE_INTEGER}; nothing changed`,
  );
}

function interrupted(operation: TokenOperation): BriefdbError {
  return new BriefdbError("CANCELLED", `interrupted before the ${operation} was applied; nothing changed`);
}

/** The connection broke after the statement was sent: it may have committed, or not. */
function outcomeUnknown(
  db: BriefDatabase,
  userId: string,
  operation: TokenOperation,
  key: string | null,
  cause: unknown,
): BriefdbError {
  return new BriefdbError(
    "OUTCOME_UNKNOWN",
    `lost the connection to ${db.target.display} after the ${operation} was sent: it may or may not have been applied (${firstLine(rootMessage(cause))})`,
    key === null
      ? `look at \`briefdb tokens history ${userId}\` before repeating it; with --key a repeat is always safe`
      : `repeat it with the same --key ${key}: it replays if it was applied, and applies once if not`,
    { cause },
  );
}

async function currentBalance(db: Executor, userId: string): Promise<number | undefined> {
  const [row] = await db.all<{ token_balance: number | string }>(sql`SELECT token_balance FROM users WHERE id = ${userId}`);
  return row === undefined ? undefined : Number(row.token_balance);
}

function userNotFound(userId: string): BriefdbError {
  return new BriefdbError("USER_NOT_FOUND", `no user with id "${userId}"; nothing changed`, "check the id with your app, or seed test data");
}
