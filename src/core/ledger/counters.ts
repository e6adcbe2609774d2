/**
 * What this process's token operations came to — applied, replayed, refused by kind, failed —
 * counted in memory for the metrics endpoint. A Map increment per operation: nothing on the hot
 * path waits for it, and nothing loads prom-client until metrics are scraped.
 */
import type { TokenOperation } from "../../db/database.js";
import { isBriefdbError } from "../../errors.js";

export type TokenOutcome = "applied" | "replayed" | "refused" | "failed";

export interface TokenCount {
  readonly operation: TokenOperation;
  readonly outcome: TokenOutcome;
  /** The error code of a refusal or failure; "" otherwise. */
  readonly code: string;
  readonly count: number;
}

const counts = new Map<string, TokenCount>();

export function countTokenResult(operation: TokenOperation, replayed: boolean): void {
  bump(operation, replayed ? "replayed" : "applied", "");
}

export function countTokenFailure(operation: TokenOperation, error: unknown): void {
  if (isBriefdbError(error) && error.exitCode === 3) bump(operation, "refused", error.code);
  else bump(operation, "failed", isBriefdbError(error) ? error.code : "INTERNAL");
}

/** Every count since the process started (or since resetTokenCounts). */
export function tokenCounts(): TokenCount[] {
  return [...counts.values()];
}

export function resetTokenCounts(): void {
  counts.clear();
}

function bump(operation: TokenOperation, outcome: TokenOutcome, code: string): void {
  const key = `${operation}/${outcome}/${code}`;
  const prior = counts.get(key);
  counts.set(key, { operation, outcome, code, count: (prior?.count ?? 0) + 1 });
}
