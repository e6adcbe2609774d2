/**
 * What one racer of `race-test --mode holds` does per operation: a seeded mix of holds (a quarter
 * of them expiring within a second), captures of a random actual cost ≤ the hold, releases and
 * plain deducts, all at one user; captures and releases pick a random active hold of that user,
 * so several racers settle the same hold at once. `atomic` is briefdb's library; `naive` checks
 * the available balance (or the hold's state) with one statement and writes with the next ones,
 * trusting the read — wrong on purpose, so that the race test is seen to catch it.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { BriefdbError, isBriefdbError } from "../../errors.js";
import { HOLD_ID_PREFIX } from "../ledger/hold-input.js";
import { applyCapture, applyHold, applyRelease, readAccount } from "../ledger/holds.js";
import { newId } from "../ids.js";
import type { RacerTask } from "./deduct-racer.js";
import { Random } from "../prng.js";
import { applyTokenOperation } from "../ledger/tokens.js";

export type HoldsOperation = "hold" | "capture" | "release" | "deduct";

/** The refusals a race may meet; anything else is an error. */
export const EXPECTED_REFUSALS = ["INSUFFICIENT_BALANCE", "HOLD_SETTLED", "HOLD_EXPIRED"] as const;

export interface HoldsRacerTask extends RacerTask {
  /** Seeds this racer's mix of operations. */
  readonly seed: number;
}

export interface HoldsRacerReport {
  /** operation → outcome ("ok", "replayed", "no active hold", or a refusal code) → count */
  tallies: Record<string, Record<string, number>>;
  /** Holds this racer placed: [id, amount]. */
  placed: Array<[string, number]>;
  /** Captures that charged (not replays): [hold id, amount]. */
  captured: Array<[string, number]>;
  /** Releases that settled a hold (not replays). */
  released: string[];
  /** Tokens taken by plain deducts. */
  deducted: number;
  /** The lowest balance or available balance a successful operation reported. */
  lowestSeen: number;
  errors: string[];
  latenciesMs: number[];
}

export function emptyHoldsReport(): HoldsRacerReport {
  return { tallies: {}, placed: [], captured: [], released: [], deducted: 0, lowestSeen: Number.MAX_SAFE_INTEGER, errors: [], latenciesMs: [] };
}

/** The hold that expires within the race: its time to live. */
export const EXPIRING_TTL_SECONDS = 1;
const LASTING_TTL_SECONDS = 600;

/** Runs operation number `index` of this racer and records what happened. */
export async function holdsOperation(db: BriefDatabase, task: HoldsRacerTask, random: Random, report: HoldsRacerReport): Promise<void> {
  const roll = random.next();
  const kind: HoldsOperation = roll < 0.3 ? "hold" : roll < 0.55 ? "capture" : roll < 0.7 ? "release" : "deduct";
  const ops = task.strategy === "naive" ? naive : atomic;
  let outcome: string;
  try {
    outcome = await run(kind, ops, db, task, random, report);
  } catch (error) {
    if (isBriefdbError(error) && (EXPECTED_REFUSALS as readonly string[]).includes(error.code)) outcome = error.code;
    else {
      const message = error instanceof Error ? error.message : String(error);
      report.errors.push(`${kind}: ${isBriefdbError(error) ? `${error.code}: ` : ""}${message}`);
      outcome = "error";
    }
  }
  const tally = (report.tallies[kind] ??= {});
  tally[outcome] = (tally[outcome] ?? 0) + 1;
}

interface Operations {
  hold(db: BriefDatabase, userId: string, amount: number, ttlSeconds: number): Promise<{ id: string; available: number; replayed: boolean }>;
  capture(db: BriefDatabase, holdId: string, amount: number): Promise<{ balance: number; replayed: boolean }>;
  release(db: BriefDatabase, holdId: string): Promise<{ replayed: boolean }>;
  deduct(db: BriefDatabase, userId: string, amount: number): Promise<{ balance: number }>;
}

async function run(
  kind: HoldsOperation,
  ops: Operations,
  db: BriefDatabase,
  task: HoldsRacerTask,
  random: Random,
  report: HoldsRacerReport,
): Promise<string> {
  const seen = (value: number) => (report.lowestSeen = Math.min(report.lowestSeen, value));
  if (kind === "hold") {
    const amount = task.amount * random.int(1, 4);
    const held = await ops.hold(db, task.userId, amount, random.next() < 0.25 ? EXPIRING_TTL_SECONDS : LASTING_TTL_SECONDS);
    seen(held.available);
    report.placed.push([held.id, amount]);
    return "ok";
  }
  if (kind === "deduct") {
    const deducted = await ops.deduct(db, task.userId, task.amount);
    seen(deducted.balance);
    report.deducted += task.amount;
    return "ok";
  }
  const target = await someActiveHold(db, task.userId);
  if (target === undefined) return "no active hold";
  if (kind === "capture") {
    const amount = random.int(1, target.amount);
    const captured = await ops.capture(db, target.id, amount);
    if (captured.replayed) return "replayed";
    seen(captured.balance);
    report.captured.push([target.id, amount]);
    return "ok";
  }
  const released = await ops.release(db, target.id);
  if (released.replayed) return "replayed";
  report.released.push(target.id);
  return "ok";
}

/** A random hold of the user still marked active (it may have expired: that is part of the race). */
async function someActiveHold(db: BriefDatabase, userId: string): Promise<{ id: string; amount: number } | undefined> {
  const [row] = await db.all<{ id: string; amount: number | string }>(
    sql`SELECT id, amount FROM token_holds WHERE user_id = ${userId} AND status = 'active' ORDER BY random() LIMIT 1`,
  );
  return row === undefined ? undefined : { id: row.id, amount: Number(row.amount) };
}

const atomic: Operations = {
  async hold(db, userId, amount, ttlSeconds) {
    const held = await applyHold(db, userId, amount, "race-test", { ttlSeconds });
    return { id: held.holdId, available: held.available, replayed: held.replayed };
  },
  async capture(db, holdId, amount) {
    const settled = await applyCapture(db, holdId, amount);
    return { balance: settled.balance ?? 0, replayed: settled.replayed };
  },
  async release(db, holdId) {
    return { replayed: (await applyRelease(db, holdId)).replayed };
  },
  async deduct(db, userId, amount) {
    return { balance: (await applyTokenOperation(db, userId, "deduct", amount, "race-test")).balance };
  },
};

/** The app's own await between a read and the writes that trust it. */
const pause = () => new Promise((resolve) => setImmediate(resolve));

function refuse(code: (typeof EXPECTED_REFUSALS)[number]): never {
  throw new BriefdbError(code, "refused by the naive check");
}

async function naiveUser(db: BriefDatabase, userId: string) {
  const [row] = await db.all<{ token_balance: number | string; held_tokens: number | string }>(
    sql`SELECT token_balance, held_tokens FROM users WHERE id = ${userId}`,
  );
  const account = await readAccount(db, userId);
  if (row === undefined || account === undefined) throw new Error(`no user ${userId}`);
  return { balance: Number(row.token_balance), heldTokens: Number(row.held_tokens), available: account.balance - account.held };
}

async function naiveHoldRow(db: BriefDatabase, holdId: string) {
  const [row] = await db.all<{ user_id: string; amount: number | string; status: string; live: unknown }>(
    sql`SELECT user_id, amount, status, CASE WHEN expires_at > ${db.holds.clock} THEN 1 ELSE 0 END AS live FROM token_holds WHERE id = ${holdId}`,
  );
  if (row === undefined) throw new Error(`no hold ${holdId}`);
  return { userId: row.user_id, amount: Number(row.amount), status: row.status, live: Number(row.live) === 1 };
}

const naive: Operations = {
  async hold(db, userId, amount, ttlSeconds) {
    const user = await naiveUser(db, userId);
    if (user.available < amount) return refuse("INSUFFICIENT_BALANCE");
    await pause();
    const id = `${HOLD_ID_PREFIX}${newId()}`;
    const now = Date.now();
    await db.run(sql`INSERT INTO token_holds (id, user_id, amount, status, reason, expires_at, created_at)
      VALUES (${id}, ${userId}, ${amount}, 'active', 'race-test (naive)', ${db.time.fromEpochMs(now + ttlSeconds * 1000)}, ${db.time.fromEpochMs(now)})`);
    await db.run(sql`UPDATE users SET held_tokens = ${user.heldTokens + amount} WHERE id = ${userId}`);
    return { id, available: user.available - amount, replayed: false };
  },
  async capture(db, holdId, amount) {
    const hold = await naiveHoldRow(db, holdId);
    if (hold.status !== "active") return refuse("HOLD_SETTLED");
    if (!hold.live) return refuse("HOLD_EXPIRED");
    const user = await naiveUser(db, hold.userId);
    await pause();
    const now = db.time.fromEpochMs(Date.now());
    await db.run(sql`UPDATE token_holds SET status = 'captured', captured_amount = ${amount}, settled_at = ${now} WHERE id = ${holdId}`);
    const balance = user.balance - amount;
    await db.run(sql`UPDATE users SET token_balance = ${balance}, held_tokens = ${user.heldTokens - hold.amount} WHERE id = ${hold.userId}`);
    await db.run(sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, hold_id, created_at)
      VALUES (${newId()}, ${hold.userId}, ${-amount}, 'deduct', 'race-test (naive)', ${balance}, ${holdId}, ${now})`);
    return { balance, replayed: false };
  },
  async release(db, holdId) {
    const hold = await naiveHoldRow(db, holdId);
    if (hold.status !== "active") return refuse("HOLD_SETTLED");
    const user = await naiveUser(db, hold.userId);
    await pause();
    await db.run(sql`UPDATE token_holds SET status = 'released', settled_at = ${db.time.fromEpochMs(Date.now())} WHERE id = ${holdId}`);
    await db.run(sql`UPDATE users SET held_tokens = ${user.heldTokens - hold.amount} WHERE id = ${hold.userId}`);
    return { replayed: false };
  },
  async deduct(db, userId, amount) {
    const user = await naiveUser(db, userId);
    if (user.available < amount) return refuse("INSUFFICIENT_BALANCE");
    await pause();
    const balance = user.balance - amount;
    const now = db.time.fromEpochMs(Date.now());
    await db.run(sql`UPDATE users SET token_balance = ${balance} WHERE id = ${userId}`);
    await db.run(sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at)
      VALUES (${newId()}, ${userId}, ${-amount}, 'deduct', 'race-test (naive)', ${balance}, ${now})`);
    return { balance };
  },
};
