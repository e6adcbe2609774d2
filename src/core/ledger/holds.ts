/**
 * Token holds: reserve tokens before work whose cost is known only afterwards, then capture the
 * actual cost (one deduct ledger row naming the hold; the rest released) or release it all. A hold
 * counts against the user's *available* balance (balance − active, unexpired holds) until it is
 * settled or its expiry passes by the database's clock; nothing runs in the background. Settling
 * is exactly-once: a repeat of the same capture or release returns the first result.
 *
 * The atomic writes are the dialect's (db.holds); this module checks input, tells refusals apart
 * and reads holds back.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase, Executor } from "../../db/database.js";
import type { CapturedHold, CaptureOutcome, HoldRecord, HoldRow, HoldStatus, PlacedHold, TransactionHolds } from "../../db/holds.js";
import { holdFromRow } from "../../db/holds.js";
import { rootMessage } from "../../db/driver-errors.js";
import { BriefdbError, firstLine } from "../../errors.js";
import { assertAmount } from "./amount.js";
import { toBriefdbError } from "../failures.js";
import { counted } from "./counters.js";
import { checkStoredText } from "./text-input.js";
import { assertHoldId, assertTtlSeconds, DEFAULT_HOLD_TTL_SECONDS, HOLD_ID_PREFIX } from "./hold-input.js";
import { newId } from "../ids.js";
import { asResult, type Result } from "./transaction.js";
import { backOff } from "../../retry.js";

export type { HoldRecord, HoldStatus } from "../../db/holds.js";

export interface HoldOptions {
  /** Seconds until the hold stops counting, 1 to 86,400. Default 900 (15 minutes). */
  readonly ttlSeconds?: number;
  readonly briefId?: string;
  /** A repeat with the same key, user and amount returns the first hold unchanged. */
  readonly idempotencyKey?: string;
  /** As a deduct's (TokenOperationOptions.signal): stops the hold if it can still be stopped. */
  readonly signal?: AbortSignal;
}

export interface SettleOptions {
  /**
   * Aborting it interrupts the capture or release if it can still be stopped (on PostgreSQL a
   * cancel request for the statement in flight): it then rejects with CANCELLED and nothing
   * changed, or resolves as usual when the settlement had been applied first.
   */
  readonly signal?: AbortSignal;
}

export interface AvailableBalance {
  readonly userId: string;
  readonly balance: number;
  /** Active holds that have not expired. */
  readonly held: number;
  /** balance − held: what a deduct or a new hold may take. */
  readonly available: number;
}

export interface HoldResult extends AvailableBalance {
  readonly holdId: string;
  readonly amount: number;
  /** As of now: a replayed hold that is past its expiry is "expired" (its capture would be refused). */
  readonly status: HoldStatus;
  readonly reason: string;
  readonly briefId: string | null;
  readonly expiresAt: Date;
  readonly createdAt: Date;
  /** The key was used before: this is that hold (balance, held and available are as of now). */
  readonly replayed: boolean;
}

export interface SettlementResult {
  readonly holdId: string;
  readonly userId: string;
  /** expired: the hold had passed its expiry when released (nothing was held any more). */
  readonly status: "captured" | "released" | "expired";
  /** What was held. */
  readonly amount: number;
  /** What was charged (0 unless captured). */
  readonly captured: number;
  /** What went back to the available balance: amount − captured. */
  readonly released: number;
  /** The capture's ledger row; null for a release. */
  readonly transactionId: string | null;
  /** The balance right after the capture; null for a release. */
  readonly balance: number | null;
  readonly settledAt: Date;
  /** The hold was already settled this way: this is the first result; nothing changed. */
  readonly replayed: boolean;
}

/**
 * How often a refused hold is tried again after its refusal turned out untrue (see whyNoRoom): as
 * often as a deduct (core/tokens.ts). Three were too few on a user whose holds, captures and
 * deducts churn (review 12: 1–7 DB_ERRORs in 4,000 mixed calls on 8 users).
 */
const PLACE_ATTEMPTS = 10;

/** Reserves tokens; never throws: { success, data | error }. */
export function holdTokens(
  db: BriefDatabase,
  userId: string,
  amount: number,
  reason: string,
  options: HoldOptions = {},
): Promise<Result<HoldResult>> {
  return asResult(db, () => applyHold(db, userId, amount, reason, options));
}

/** Captures `amount` of a hold (default: all of it); never throws. */
export function captureHold(db: BriefDatabase, holdId: string, amount?: number, options: SettleOptions = {}): Promise<Result<SettlementResult>> {
  return asResult(db, () => applyCapture(db, holdId, amount, options));
}

/** Releases a hold; never throws. */
export function releaseHold(db: BriefDatabase, holdId: string, options: SettleOptions = {}): Promise<Result<SettlementResult>> {
  return asResult(db, () => applyRelease(db, holdId, options));
}

/** The user's active holds, soonest expiry first; never throws. */
export function listHolds(db: BriefDatabase, userId: string): Promise<Result<HoldRecord[]>> {
  return asResult(db, () => getActiveHolds(db, userId));
}

/** As holdTokens, but throws the BriefdbError. */
export function applyHold(db: BriefDatabase, userId: string, amount: number, reason: string, options: HoldOptions = {}): Promise<HoldResult> {
  return counted("hold", () => placeHold(db, userId, amount, reason, options));
}

/** As captureHold, but throws the BriefdbError. */
export function applyCapture(db: BriefDatabase, holdId: string, amount?: number, options: SettleOptions = {}): Promise<SettlementResult> {
  return counted("capture", () => captureOnce(db, holdId, amount, options));
}

/** As releaseHold, but throws the BriefdbError. */
export function applyRelease(db: BriefDatabase, holdId: string, options: SettleOptions = {}): Promise<SettlementResult> {
  return counted("release", () => releaseOnce(db, holdId, options));
}

async function placeHold(
  db: BriefDatabase,
  userId: string,
  amount: number,
  reason: string,
  options: HoldOptions = {},
): Promise<HoldResult> {
  assertAmount(amount);
  const key = checkStoredText({ userId, reason, briefId: options.briefId, idempotencyKey: options.idempotencyKey });
  const ttlSeconds = assertTtlSeconds(options.ttlSeconds ?? DEFAULT_HOLD_TTL_SECONDS);
  if (key !== null) {
    const prior = await findHoldByKey(db, key);
    if (prior) return replayHold(db, prior, userId, amount);
  }
  const hold = { id: `${HOLD_ID_PREFIX}${newId()}`, userId, amount, reason, briefId: options.briefId ?? null, idempotencyKey: key, ttlSeconds };
  const signal = options.signal;
  let first = 1;
  const submit = db.holds.submitPlace;
  if (key === null && signal === undefined && submit !== undefined) {
    // batched with the holds and captures called beside it (PostgreSQL)
    const outcome = await submit(hold);
    if (outcome.kind === "placed") return placedResult(outcome.placed);
    // final: the dialect already ran the batch again where that was safe
    if (outcome.kind === "failed") throw placeFailure(db, outcome.error, userId, key, options.briefId);
    if (outcome.balance === null) throw userNotFound(userId);
    if (outcome.balance - outcome.heldTokens < amount) {
      // refused at its place in the call order (unless expired holds took the room: swept, then tried again below)
      const refused = await whyNoRoomInBatch(db, userId, "hold", amount, {
        balance: outcome.balance,
        heldTokens: outcome.heldTokens,
        ...(outcome.decidedAtMs === undefined ? {} : { decidedAtMs: outcome.decidedAtMs }),
      });
      if (refused !== undefined) throw refused;
    }
    first = 2;
  }
  for (let attempt = first; ; attempt++) {
    if (signal?.aborted) throw interrupted("hold");
    let placed;
    try {
      placed = await db.holds.place(hold, signal === undefined ? {} : { signal });
    } catch (error) {
      const kind = db.classify(error);
      if (signal?.aborted && (error === signal.reason || kind === "cancelled")) throw interrupted("hold");
      if (kind === "unique_violation" && key !== null) {
        const prior = await findHoldByKey(db, key);
        if (prior) return replayHold(db, prior, userId, amount);
      }
      throw placeFailure(db, error, userId, key, options.briefId);
    }
    if (placed !== undefined) return placedResult(placed);
    const refused = await whyNoRoom(db, userId, "hold", amount);
    if (refused !== undefined) throw refused;
    if (attempt >= PLACE_ATTEMPTS) {
      throw new BriefdbError("DB_ERROR", `user ${userId} kept changing while the hold was tried ${PLACE_ATTEMPTS} times; nothing changed`);
    }
  }
}

function placedResult({ hold: record, balance, held }: PlacedHold): HoldResult {
  return { ...holdFields(record), balance, held, available: balance - held, replayed: false };
}

/** A failed hold: its brief missing, its outcome unknown, or the failure as it is. */
function placeFailure(db: BriefDatabase, error: unknown, userId: string, key: string | null, briefId: string | undefined): BriefdbError {
  const kind = db.classify(error);
  if (kind === "foreign_key_violation" && briefId !== undefined) {
    return new BriefdbError("BRIEF_NOT_FOUND", `no brief with id "${briefId}"; nothing changed`);
  }
  if (kind === "connection_lost") {
    return outcomeUnknown(
      db,
      "hold",
      error,
      key === null
        ? `look at \`briefdb tokens holds ${userId}\` before placing it again; with --key a repeat is always safe`
        : `repeat it with the same --key ${key}: it replays if it was placed, and places it once if not`,
    );
  }
  return toBriefdbError(error, db);
}

async function captureOnce(db: BriefDatabase, holdId: string, amount?: number, options: SettleOptions = {}): Promise<SettlementResult> {
  holdId = assertHoldId(holdId);
  if (amount !== undefined) assertAmount(amount);
  const signal = options.signal;
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw interrupted("capture");
    // the capture decides on the hold row itself; only a refusal reads the hold to say why
    const batched = attempt === 0 && signal === undefined ? db.holds.submitCapture?.(holdId, amount ?? null, newId()) : undefined;
    const captured =
      batched !== undefined
        ? await batchedCapture(db, batched)
        : await settleRetried(db, "capture", signal, () => db.holds.capture(holdId, amount ?? null, newId(), signal === undefined ? {} : { signal }));
    if (captured !== undefined) return settlement(captured.hold, captured.entry.id, captured.entry.balanceAfter, false);
    const hold = await findHold(db, holdId);
    if (hold === undefined) throw holdNotFound(holdId);
    const { record } = hold;
    const charge = amount ?? record.amount;
    if (record.status === "captured" && record.capturedAmount === charge) {
      const [row] = await db.all<{ id: string; balance_after: number | string }>(
        sql`SELECT id, balance_after FROM token_transactions WHERE hold_id = ${holdId}`,
      );
      return settlement(record, row?.id ?? null, row === undefined ? null : Number(row.balance_after), true);
    }
    if (record.status === "expired" || (record.status === "active" && hold.expired)) {
      throw new BriefdbError(
        "HOLD_EXPIRED",
        `hold ${holdId} expired at ${record.expiresAt.toISOString()}; nothing was charged`,
        "place a new hold, or charge with `tokens deduct`",
      );
    }
    if (record.status !== "active") throw alreadySettled(record, `capture ${charge}`);
    if (charge > record.amount) {
      throw new BriefdbError(
        "CAPTURE_EXCEEDS_HOLD",
        `hold ${holdId} holds ${record.amount} tokens, cannot capture ${charge}; nothing changed`,
        "capture at most what was held; hold more next time",
      );
    }
    // active, unexpired and within the hold, yet refused: the clocks of the two reads straddled a change; once more
    if (attempt >= 1) throw new BriefdbError("DB_ERROR", `hold ${holdId} could not be captured; nothing changed`);
  }
}

/** A batched capture's outcome: captured, undefined when not capturable; a failure is final (the dialect ran the batch again where that was safe). */
async function batchedCapture(db: BriefDatabase, outcome: Promise<CaptureOutcome>): Promise<CapturedHold | undefined> {
  const settled = await outcome;
  if (settled.kind === "captured") return settled.captured;
  if (settled.kind === "failed") throw settleFailure(db, settled.error, "capture", undefined);
  return undefined;
}

async function releaseOnce(db: BriefDatabase, holdId: string, options: SettleOptions = {}): Promise<SettlementResult> {
  holdId = assertHoldId(holdId);
  const signal = options.signal;
  if (signal?.aborted) throw interrupted("release");
  const released = await settleRetried(db, "release", signal, () => db.holds.release(holdId, signal === undefined ? {} : { signal }));
  if (released !== undefined) return settlement(released, null, null, false);
  const hold = await findHold(db, holdId);
  if (hold === undefined) throw holdNotFound(holdId);
  // released before, or settled by its expiry: either way nothing is held, as the caller wants
  if (hold.record.status === "released" || hold.record.status === "expired") return settlement(hold.record, null, null, true);
  throw alreadySettled(hold.record, "release");
}

/** The user's active, unexpired holds, soonest expiry first. */
export async function getActiveHolds(db: BriefDatabase, userId: string): Promise<HoldRecord[]> {
  const rows = await db.all<HoldRow>(sql`
    SELECT ${holdColumns(db)} FROM token_holds
    WHERE user_id = ${userId} AND status = 'active' AND expires_at > ${db.holds.clock}
    ORDER BY expires_at, id`);
  if (rows.length === 0 && (await readAccount(db, userId)) === undefined) throw userNotFound(userId);
  return rows.map(holdFromRow);
}

/** Balance, held and available: one read of the user row and the user's active holds (one index). */
export async function getAvailableBalance(db: BriefDatabase, userId: string): Promise<AvailableBalance> {
  const account = await readAccount(db, userId);
  if (account === undefined) throw userNotFound(userId);
  return { userId, balance: account.balance, held: account.held, available: account.balance - account.held };
}

interface Account {
  readonly balance: number;
  /** users.held_tokens: every active hold, expired or not, as the conditional writes count them. */
  readonly heldTokens: number;
  /** Active holds that have not expired. */
  readonly held: number;
  /** Active holds past their expiry that no write has swept yet (they no longer hold). */
  readonly expiredHeld: number;
}

/** The user's balance and holds as of now, or undefined when there is no such user. */
export async function readAccount(db: BriefDatabase, userId: string, reader: Executor = db): Promise<Account | undefined> {
  const [row] = await reader.all<{ token_balance: number | string; held_tokens: number | string; held: number | string }>(sql`
    SELECT u.token_balance, u.held_tokens,
      (SELECT COALESCE(SUM(h.amount), 0) FROM token_holds h
        WHERE h.user_id = u.id AND h.status = 'active' AND h.expires_at > ${db.holds.clock}) AS held
    FROM users u WHERE u.id = ${userId}`);
  if (row === undefined) return undefined;
  const held = Number(row.held);
  const heldTokens = Number(row.held_tokens);
  return { balance: Number(row.token_balance), heldTokens, held, expiredHeld: heldTokens - held };
}

/**
 * Why a deduct or hold found no room (nothing was changed), read afresh; undefined when it should
 * be tried again: the user row now has room (a concurrent change), or expired holds still took
 * room and have just been settled as expired. The conditional writes count such holds as held
 * (they decide on the user row alone, which is what keeps them safe under concurrency), so this is
 * where an expiry frees room. Inside a caller's transaction the sweep runs in that transaction
 * (`holds`: the transaction's): it commits or rolls back with the deduct that needed it.
 */
export async function whyNoRoom(
  db: BriefDatabase,
  userId: string,
  what: "deduct" | "hold",
  amount: number,
  options: { readonly reader?: Executor; readonly holds?: TransactionHolds } = {},
): Promise<BriefdbError | undefined> {
  const account = await readAccount(db, userId, options.reader ?? db);
  if (account === undefined) return userNotFound(userId);
  if (account.balance - account.heldTokens >= amount) return undefined;
  if (account.expiredHeld > 0) {
    await (options.holds ?? db.holds).sweepExpired(userId).catch((error: unknown) => {
      throw toBriefdbError(error, db);
    });
    return undefined;
  }
  const available = account.balance - account.held;
  const state =
    account.held === 0
      ? `has ${account.balance} tokens,`
      : `has ${account.balance} tokens, ${account.held} of them held, ${available} available;`;
  return new BriefdbError("INSUFFICIENT_BALANCE", `user ${userId} ${state} cannot ${what} ${amount}; nothing changed`);
}

/**
 * Why a batched deduct or hold found no room, from what its guard saw in the batch (`seen`): exact unless
 * expired holds were among the held tokens, which are then swept (undefined: try it again). The
 * balance is not read afresh: later operations of the same user may have been applied since, and
 * judging this one on their result would apply it out of the order it was called in.
 */
export async function whyNoRoomInBatch(
  db: BriefDatabase,
  userId: string,
  what: "deduct" | "hold",
  amount: number,
  seen: { readonly balance: number; readonly heldTokens: number; readonly decidedAtMs?: number },
): Promise<BriefdbError | undefined> {
  const account = await readAccount(db, userId);
  if (account === undefined) return userNotFound(userId);
  if (account.expiredHeld > 0) {
    await db.holds.sweepExpired(userId).catch((error: unknown) => {
      throw toBriefdbError(error, db);
    });
    return undefined;
  }
  if (seen.decidedAtMs !== undefined && Number.isFinite(seen.decidedAtMs) && (await sweptSince(db, userId, seen.decidedAtMs))) {
    // holds that had expired when the guard refused still counted in held_tokens then, and a
    // concurrent refusal has swept them since: at its decision they held nothing, so it is tried again
    return undefined;
  }
  const available = seen.balance - seen.heldTokens;
  const state = seen.heldTokens === 0 ? `has ${seen.balance} tokens,` : `has ${seen.balance} tokens, ${seen.heldTokens} of them held, ${available} available;`;
  return new BriefdbError("INSUFFICIENT_BALANCE", `user ${userId} ${state} cannot ${what} ${amount}; nothing changed`);
}

/** Whether a hold of the user that had expired by `atMs` was still unswept then (swept after it). */
async function sweptSince(db: BriefDatabase, userId: string, atMs: number): Promise<boolean> {
  const at = (column: string) => db.time.epochMs(sql.raw(column));
  const [row] = await db.all<{ found: unknown }>(sql`
    SELECT 1 AS found FROM token_holds
    WHERE user_id = ${userId} AND status = 'expired' AND ${at("expires_at")} <= ${atMs} AND ${at("settled_at")} > ${atMs}
    LIMIT 1`);
  return row !== undefined;
}

interface FoundHold {
  readonly record: HoldRecord;
  /** Past its expiry by the database's clock now. */
  readonly expired: boolean;
}

async function findHold(db: BriefDatabase, holdId: string): Promise<FoundHold | undefined> {
  const [row] = await db.all<HoldRow & { expired: unknown }>(sql`
    SELECT ${holdColumns(db)}, CASE WHEN expires_at <= ${db.holds.clock} THEN 1 ELSE 0 END AS expired
    FROM token_holds WHERE id = ${holdId}`);
  return row === undefined ? undefined : { record: holdFromRow(row), expired: Number(row.expired) === 1 };
}

async function findHoldByKey(db: BriefDatabase, key: string): Promise<HoldRecord | undefined> {
  const [row] = await db.all<HoldRow>(sql`SELECT ${holdColumns(db)} FROM token_holds WHERE idempotency_key = ${key}`);
  return row === undefined ? undefined : holdFromRow(row);
}

function holdColumns(db: BriefDatabase) {
  const ms = (column: string, as: string) => sql`${db.time.epochMs(sql.raw(column))} AS ${sql.raw(as)}`;
  return sql`id, user_id, amount, status, captured_amount, reason, brief_id, idempotency_key,
    ${ms("expires_at", "expires_at_ms")}, ${ms("created_at", "created_at_ms")}, ${ms("settled_at", "settled_at_ms")}`;
}

async function replayHold(db: BriefDatabase, prior: HoldRecord, userId: string, amount: number): Promise<HoldResult> {
  if (prior.userId !== userId || prior.amount !== amount) {
    throw new BriefdbError(
      "IDEMPOTENCY_CONFLICT",
      `idempotency key "${prior.idempotencyKey}" was used for a hold of ${prior.amount} on user ${prior.userId}; refused a hold of ${amount} on user ${userId}`,
      "use a new key for a new hold",
    );
  }
  // as it is now: an active hold past its expiry no longer holds anything, so it replays as expired
  const found = await findHold(db, prior.id);
  const record = found?.record ?? prior;
  const status = record.status === "active" && found?.expired === true ? "expired" : record.status;
  const now = await getAvailableBalance(db, userId);
  return { ...holdFields(record), status, balance: now.balance, held: now.held, available: now.available, replayed: true };
}

function holdFields(record: HoldRecord) {
  return {
    holdId: record.id,
    userId: record.userId,
    amount: record.amount,
    status: record.status,
    reason: record.reason,
    briefId: record.briefId,
    expiresAt: record.expiresAt,
    createdAt: record.createdAt,
  };
}

function settlement(record: HoldRecord, transactionId: string | null, balance: number | null, replayed: boolean): SettlementResult {
  const captured = record.capturedAmount ?? 0;
  return {
    holdId: record.id,
    userId: record.userId,
    status: record.status as SettlementResult["status"],
    amount: record.amount,
    captured,
    released: record.amount - captured,
    transactionId,
    balance,
    settledAt: record.settledAt ?? new Date(),
    replayed,
  };
}

/** How often a settlement rolled back by a deadlock or serialization failure is run again. */
const SETTLE_ATTEMPTS = 10;

/**
 * Runs a capture or release; one that a deadlock or serialization failure rolled back (nothing
 * changed) is run again, as a deduct is: a deduct in the app's transaction that sweeps expired
 * holds waits for a hold row while it holds the user row, so a settlement of one of them can be
 * the deadlock's victim.
 */
async function settleRetried<T>(db: BriefDatabase, what: "capture" | "release", signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (db.classify(error) !== "retryable" || signal?.aborted || attempt >= SETTLE_ATTEMPTS) throw settleFailure(db, error, what, signal);
      await backOff(attempt);
    }
  }
}

/** A failed capture or release: interrupted before it applied, outcome unknown, or the failure as it is. */
function settleFailure(db: BriefDatabase, error: unknown, what: "capture" | "release", signal: AbortSignal | undefined): BriefdbError {
  const kind = db.classify(error);
  if (signal?.aborted && (error === signal.reason || kind === "cancelled")) return interrupted(what);
  if (kind === "connection_lost") {
    return outcomeUnknown(db, what, error, `repeat the same ${what}: a hold settles once, and a repeat returns the first result if it was applied`);
  }
  return toBriefdbError(error, db);
}

function interrupted(what: "hold" | "capture" | "release"): BriefdbError {
  return new BriefdbError("CANCELLED", `interrupted before the ${what} was applied; nothing changed`);
}

/** The connection broke after the statement was sent: it may have committed, or not. */
function outcomeUnknown(db: BriefDatabase, what: "hold" | "capture" | "release", cause: unknown, hint: string): BriefdbError {
  return new BriefdbError(
    "OUTCOME_UNKNOWN",
    `lost the connection to ${db.target.display} after the ${what} was sent: it may or may not have been applied (${firstLine(rootMessage(cause))})`,
    hint,
    { cause },
  );
}

function alreadySettled(record: HoldRecord, attempted: string): BriefdbError {
  const how = record.status === "captured" ? `captured ${record.capturedAmount}` : record.status;
  return new BriefdbError(
    "HOLD_SETTLED",
    `hold ${record.id} was already ${how} at ${record.settledAt?.toISOString() ?? "?"}; refused ${attempted}; nothing changed`,
    "a hold settles once: repeat the same capture or release to read its result",
  );
}

function holdNotFound(holdId: string): BriefdbError {
  return new BriefdbError("HOLD_NOT_FOUND", `no hold with id "${holdId}"; nothing changed`, "check the id `tokens hold` printed, or list them with `tokens holds <user>`");
}

function userNotFound(userId: string): BriefdbError {
  return new BriefdbError("USER_NOT_FOUND", `no user with id "${userId}"; nothing changed`, "check the id with your app, or seed test data");
}
