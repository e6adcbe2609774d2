/**
 * What one racer does per deduction, by strategy: `atomic` is briefdb's own operation; `naive` is
 * the read-check-write code a ledger must not have (read the balance, check it, write the new
 * balance and a ledger row as separate statements), kept so that the race test is seen to catch a race.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { isBriefdbError } from "../../errors.js";
import { newId } from "../ids.js";
import type { RacerLoopTask } from "./worker-loop.js";
import { applyTokenOperation } from "../ledger/tokens.js";

import type { RaceStrategy } from "./options.js";

export type { RaceStrategy } from "./options.js";

export interface RacerTask extends RacerLoopTask {
  readonly userId: string;
  readonly amount: number;
  readonly strategy: RaceStrategy;
}

export interface RacerReport {
  /** Whether this racer's database batched token operations (off with --no-batch). */
  batched: boolean;
  successes: number;
  rejected: number;
  errors: string[];
  latenciesMs: number[];
}

export type DeductOutcome = "ok" | "insufficient" | { readonly error: string };

/** A user id that never exists: deducting from it connects and prepares without changing data. */
const WARM_UP_USER = "briefdb-race-warm-up-no-such-user";

export async function deductOnce(db: BriefDatabase, task: RacerTask, phase: "warm-up" | "race"): Promise<DeductOutcome> {
  const userId = phase === "warm-up" ? WARM_UP_USER : task.userId;
  try {
    if (task.strategy === "naive") return await naiveDeduct(db, userId, task.amount);
    await applyTokenOperation(db, userId, "deduct", task.amount, "race-test");
    return "ok";
  } catch (error) {
    if (isBriefdbError(error) && error.code === "INSUFFICIENT_BALANCE") return "insufficient";
    const message = error instanceof Error ? error.message : String(error);
    return { error: isBriefdbError(error) ? `${error.code}: ${message}` : message };
  }
}

/** The "before" code: a read, a check, then writes that trust the read. Wrong on purpose. */
async function naiveDeduct(db: BriefDatabase, userId: string, amount: number): Promise<DeductOutcome> {
  const [row] = await db.all<{ token_balance: number | string }>(sql`SELECT token_balance FROM users WHERE id = ${userId}`);
  if (row === undefined) return { error: `USER_NOT_FOUND: no user ${userId}` };
  const balance = Number(row.token_balance);
  if (balance < amount) return "insufficient";
  await new Promise((resolve) => setImmediate(resolve)); // the app's own await between read and write
  const now = db.time.fromEpochMs(Date.now());
  await db.run(sql`UPDATE users SET token_balance = ${balance - amount}, updated_at = ${now} WHERE id = ${userId}`);
  await db.run(sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at)
    VALUES (${newId()}, ${userId}, ${-amount}, 'deduct', 'race-test (naive)', ${balance - amount}, ${now})`);
  return "ok";
}
