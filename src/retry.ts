/**
 * Waiting before trying again: one `sleep`, and one jittered back-off that every retry loop of
 * src/ uses (core and both dialects import this leaf; it imports nothing).
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A back-off curve: the ceiling doubles with each attempt from `baseMs` up to `capMs`, and the wait
 * is the ceiling times (`floor` + a random share of one), so that callers who failed together come
 * back at different moments. floor 0 is "full jitter" (anywhere up to the ceiling).
 */
export interface BackOffCurve {
  readonly baseMs: number;
  readonly capMs: number;
  readonly floor: number;
}

/** A statement or a batch rolled back by a deadlock or serialization failure: 5 ms doubling to 200 ms, ×0.5–1.5. */
export const ROLLED_BACK_STATEMENT: BackOffCurve = { baseMs: 5, capMs: 200, floor: 0.5 };

/** A whole transaction run again after a serialization failure: full jitter up to 4 ms doubling to 250 ms. */
export const ROLLED_BACK_TRANSACTION: BackOffCurve = { baseMs: 4, capMs: 250, floor: 0 };

/** How long to wait before attempt `attempt + 1`. */
export function backOffMs(attempt: number, curve: BackOffCurve = ROLLED_BACK_STATEMENT): number {
  return Math.min(curve.capMs, curve.baseMs * 2 ** attempt) * (curve.floor + Math.random());
}

/** Waits before attempt `attempt + 1`. */
export function backOff(attempt: number, curve: BackOffCurve = ROLLED_BACK_STATEMENT): Promise<void> {
  return sleep(backOffMs(attempt, curve));
}
