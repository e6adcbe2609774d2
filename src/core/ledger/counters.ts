/**
 * What this process's token operations (credits, deducts, holds, captures, releases) came to —
 * applied, replayed, refused by kind, failed —
 * counted in memory for the metrics endpoint. A Map increment per operation: nothing on the hot
 * path waits for it, and nothing loads prom-client until metrics are scraped.
 */
import type { TokenOperation } from "../../db/database.js";
import { isBriefdbError } from "../../errors.js";
import { LATENCY_BUCKETS_MS, elapsedMs } from "../stats.js";

export type TokenOutcome = "applied" | "replayed" | "refused" | "failed";

/** What is counted: the ledger's two changes, and the three of holds. */
export type CountedOperation = TokenOperation | "hold" | "capture" | "release";

export interface TokenCount {
  readonly operation: CountedOperation;
  readonly outcome: TokenOutcome;
  /** The error code of a refusal or failure; "" otherwise. */
  readonly code: string;
  readonly count: number;
}

const counts = new Map<string, TokenCount>();
/** Per operation: how many took at most each LATENCY_BUCKETS_MS bound (the last slot: longer). */
const latencies = new Map<CountedOperation, number[]>();

/** How long one operation's calls took, as counts over LATENCY_BUCKETS_MS (the last: over the last bound). */
export interface OperationLatency {
  readonly operation: CountedOperation;
  readonly counts: readonly number[];
}

/** Runs `work` and counts what it came to: applied or replayed when it resolves, refused or failed when it throws. */
export async function counted<T extends { readonly replayed: boolean }>(operation: CountedOperation, work: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  try {
    const result = await work();
    bump(operation, result.replayed ? "replayed" : "applied", "");
    return result;
  } catch (error) {
    if (isBriefdbError(error) && error.exitCode === 3) bump(operation, "refused", error.code);
    else bump(operation, "failed", isBriefdbError(error) ? error.code : "INTERNAL");
    throw error;
  } finally {
    time(operation, elapsedMs(start));
  }
}

/** Every count since the process started (or since resetTokenCounts). */
export function tokenCounts(): TokenCount[] {
  return [...counts.values()];
}

/** How long this process's operations took, per operation (the dashboard's latency histogram). */
export function tokenLatencies(): OperationLatency[] {
  return [...latencies].map(([operation, bucketCounts]) => ({ operation, counts: [...bucketCounts] }));
}

export function resetTokenCounts(): void {
  counts.clear();
  latencies.clear();
}

function time(operation: CountedOperation, ms: number): void {
  let bucketCounts = latencies.get(operation);
  if (bucketCounts === undefined) latencies.set(operation, (bucketCounts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)));
  const at = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
  bucketCounts[at < 0 ? LATENCY_BUCKETS_MS.length : at]! += 1;
}

function bump(operation: CountedOperation, outcome: TokenOutcome, code: string): void {
  const key = `${operation}/${outcome}/${code}`;
  const prior = counts.get(key);
  counts.set(key, { operation, outcome, code, count: (prior?.count ?? 0) + 1 });
}
