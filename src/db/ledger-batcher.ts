/**
 * Natural batching of token operations (issue 12): no timer. A change submitted while no batch is
 * being applied starts one at once (after the current microtask, so that changes submitted in the
 * same turn go together); changes submitted while a batch is applied queue, and everything queued
 * goes as the next batch, at most `limit` at a time, in submission order. The dialect's
 * `applyBatch` judges each change on its own and answers one outcome per change. With several
 * lanes, several batches are in flight at once, each user's changes always in the same lane.
 */
import type { BalanceChange, BatchOutcome, LedgerStatements } from "./database.js";

export type ApplyBatch = (changes: readonly BalanceChange[]) => Promise<BatchOutcome[]>;

/** How many changes go in one batch at most. */
export const BATCH_LIMIT = 500;

interface Queued {
  readonly change: BalanceChange;
  readonly resolve: (outcome: BatchOutcome) => void;
}

export class LedgerBatcher {
  private readonly lanes: Lane[];

  /**
   * `lanes` batches may be in flight at once (PostgreSQL: on as many connections of the pool);
   * a user's changes always take the same lane, so that they are applied in the order submitted.
   */
  constructor(
    applyBatch: ApplyBatch,
    lanes = 1,
    limit = BATCH_LIMIT,
  ) {
    this.lanes = Array.from({ length: Math.max(1, lanes) }, () => new Lane(applyBatch, limit));
  }

  submit(change: BalanceChange): Promise<BatchOutcome> {
    const lane = this.lanes.length === 1 ? this.lanes[0] : this.lanes[laneOf(change.userId, this.lanes.length)];
    return (lane as Lane).submit(change);
  }
}

class Lane {
  private queue: Queued[] = [];
  private draining = false;

  constructor(
    private readonly applyBatch: ApplyBatch,
    private readonly limit: number,
  ) {}

  submit(change: BalanceChange): Promise<BatchOutcome> {
    return new Promise((resolve) => {
      this.queue.push({ change, resolve });
      if (!this.draining) {
        this.draining = true;
        queueMicrotask(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.limit);
      let outcomes: BatchOutcome[];
      try {
        outcomes = await this.applyBatch(batch.map((queued) => queued.change));
      } catch (error) {
        outcomes = batch.map(() => ({ kind: "failed", error }));
      }
      batch.forEach((queued, i) => queued.resolve(outcomes[i] ?? { kind: "failed", error: new Error("briefdb: a batch answered too few outcomes") }));
    }
    this.draining = false;
  }
}

/** A user's lane: a string hash (FNV-1a) modulo the lanes. */
function laneOf(userId: string, lanes: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % lanes;
}

/**
 * `statements` with `submit` going through a batcher over `applyBatch`. When `alone()` says so
 * (SQLite: the call comes from inside the transaction that holds the connection), the change is
 * applied at once as a batch of its own instead of joining others that must not share its fate.
 */
export function withBatching(
  statements: LedgerStatements,
  applyBatch: ApplyBatch,
  options: { readonly lanes?: number; readonly alone?: () => boolean } = {},
): LedgerStatements {
  const batcher = new LedgerBatcher(applyBatch, options.lanes ?? 1);
  const alone = options.alone;
  return {
    ...statements,
    submit: async (change) => {
      if (alone?.()) {
        const [outcome] = await applyBatch([change]);
        return outcome ?? { kind: "failed", error: new Error("briefdb: a batch answered no outcome") };
      }
      return batcher.submit(change);
    },
  };
}
