/**
 * race-test's options that are checked before anything connects, in a module free of drivers so
 * that parsing them loads nothing else: the strategies, and the opening balance derived from
 * --n and --amount.
 */
import { BriefdbError } from "../../errors.js";

/**
 * How racers deduct: `atomic` is briefdb's own operation; `naive` is the
 * read-check-write code a ledger must not have, kept so that the race test is seen to catch a race.
 */
export const RACE_STRATEGIES = ["atomic", "naive"] as const;

export type RaceStrategy = (typeof RACE_STRATEGIES)[number];

/**
 * What racers fire: `deducts` only, or `holds`: a mix of holds, captures, releases, expiries and
 * plain deducts at one user (see race-holds.ts).
 */
export const RACE_MODES = ["deducts", "holds"] as const;

export type RaceMode = (typeof RACE_MODES)[number];

/**
 * The throw-away user's opening balance: `balance` when given, else enough for half of the n
 * deductions. Refuses (USAGE, naming the flags) a derived balance past 2^53−1 rather than letting
 * it round.
 */
export function raceOpeningBalance(n: number, amount: number, balance?: number): number {
  if (balance !== undefined) return balance;
  const derived = BigInt(Math.floor(n / 2)) * BigInt(amount);
  if (derived > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new BriefdbError(
      "USAGE",
      `--n ${n} and --amount ${amount} make a default opening balance of ${derived} (half the deductions' worth), past ${Number.MAX_SAFE_INTEGER}`,
      "lower --amount or --n, or give --balance",
    );
  }
  return Number(derived);
}
