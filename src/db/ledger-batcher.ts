/**
 * Natural batching of token operations (issue 12): no timer. A change submitted while no batch is
 * being applied starts one at once (after the current microtask, so that changes submitted in the
 * same turn go together); changes submitted while a batch is applied queue, and everything queued
 * goes as the next batch, at most `limit` at a time, in submission order. The dialect's
 * `applyBatch` judges each change on its own and answers one outcome per change.
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
  private queue: Queued[] = [];
  private draining = false;

  constructor(
    private readonly applyBatch: ApplyBatch,
    private readonly limit = BATCH_LIMIT,
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

/** `statements` with `submit` going through a batcher over `applyBatch`. */
export function withBatching(statements: LedgerStatements, applyBatch: ApplyBatch): LedgerStatements {
  const batcher = new LedgerBatcher(applyBatch);
  return { ...statements, submit: (change) => batcher.submit(change) };
}
