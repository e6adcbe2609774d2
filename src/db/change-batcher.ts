/**
 * Natural batching of token operations: no timer. A change submitted while a batch may
 * still start goes at once (after the current microtask, so that changes submitted in the same
 * turn go together); changes submitted while every slot is busy queue, and everything queued goes
 * as the next batch when a slot frees, at most `limit` at a time, in submission order. The
 * dialect's `applyBatch` judges each change on its own and answers one outcome per change.
 *
 * Up to `slots` batches are in flight at once (PostgreSQL: on as many connections of the pool).
 * A change never starts while a batch in flight holds a change of its user or its idempotency
 * key, nor before an earlier queued change of its user or key: one user's changes are applied in
 * the order submitted, and two batches in flight never share a user (so they never wait for each
 * other's row locks) or a key. At low load a change finds a free slot and goes at once, alone;
 * under load the queue fills and batches grow. Generic over the change: deducts and credits (key:
 * the idempotency key), and on PostgreSQL holds and captures (key: the hold a capture names).
 */
import type { LedgerStatements } from "./database.js";
import type { BalanceChange, BatchOutcome, FailedChange } from "./ledger-values.js";

export type { FailedChange } from "./ledger-values.js";

/** Applies a batch: one outcome per change, in order. */
export type ApplyChanges<C, O> = (changes: readonly C[]) => Promise<Array<O | FailedChange>>;

export type ApplyBatch = ApplyChanges<BalanceChange, BatchOutcome>;

/**
 * Where a change queues: its user (one user's changes keep their order, and two batches in flight
 * never share a user) and its key, if any (never two in flight with one key).
 */
export interface Lanes {
  readonly userId: string;
  readonly key: string | null;
}

/** How many changes go in one batch at most. */
export const BATCH_LIMIT = 500;

interface Queued<C, O> {
  readonly change: C;
  readonly lanes: Lanes;
  readonly resolve: (outcome: O | FailedChange) => void;
}

/** The batcher over changes of type C (deducts and credits; holds and captures), answering O. */
export class ChangeBatcher<C, O> {
  private queue: Array<Queued<C, O>> = [];
  private inFlight = 0;
  private scheduled = false;
  /** Users and keys of the batches in flight, with how many of their changes. */
  private readonly busyUsers = new Map<string, number>();
  private readonly busyKeys = new Set<string>();
  private readonly slots: number;

  constructor(
    private readonly applyBatch: ApplyChanges<C, O>,
    private readonly lanesOf: (change: C) => Lanes,
    slots = 1,
    private readonly limit = BATCH_LIMIT,
  ) {
    this.slots = Math.max(1, slots);
  }

  submit(change: C): Promise<O | FailedChange> {
    return new Promise((resolve) => {
      this.queue.push({ change, lanes: this.lanesOf(change), resolve });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.slots) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Starts batches while a slot is free and a queued change may go. */
  private pump(): void {
    while (this.inFlight < this.slots && this.queue.length > 0) {
      const batch = this.take();
      if (batch.length === 0) return;
      void this.send(batch);
    }
  }

  /**
   * The next batch: queued changes in order, skipping those whose user or key a batch in flight
   * holds, and every later one of a user or key skipped (they stay queued, in order).
   */
  private take(): Array<Queued<C, O>> {
    if (this.inFlight === 0) return this.queue.splice(0, this.limit);
    const batch: Array<Queued<C, O>> = [];
    const rest: Array<Queued<C, O>> = [];
    const blockedUsers = new Set<string>();
    const blockedKeys = new Set<string>();
    for (const queued of this.queue) {
      const { userId, key } = queued.lanes;
      const blocked =
        batch.length >= this.limit ||
        this.busyUsers.has(userId) ||
        blockedUsers.has(userId) ||
        (key !== null && (this.busyKeys.has(key) || blockedKeys.has(key)));
      if (blocked) {
        blockedUsers.add(userId);
        if (key !== null) blockedKeys.add(key);
        rest.push(queued);
      } else {
        batch.push(queued);
      }
    }
    this.queue = rest;
    return batch;
  }

  private async send(batch: Array<Queued<C, O>>): Promise<void> {
    this.inFlight++;
    for (const { lanes } of batch) {
      this.busyUsers.set(lanes.userId, (this.busyUsers.get(lanes.userId) ?? 0) + 1);
      if (lanes.key !== null) this.busyKeys.add(lanes.key);
    }
    let outcomes: Array<O | FailedChange>;
    try {
      outcomes = await this.applyBatch(batch.map((queued) => queued.change));
    } catch (error) {
      outcomes = batch.map(() => ({ kind: "failed", error }));
    }
    for (const { lanes } of batch) {
      const left = (this.busyUsers.get(lanes.userId) ?? 1) - 1;
      if (left === 0) this.busyUsers.delete(lanes.userId);
      else this.busyUsers.set(lanes.userId, left);
      if (lanes.key !== null) this.busyKeys.delete(lanes.key);
    }
    this.inFlight--;
    batch.forEach((queued, i) => queued.resolve(outcomes[i] ?? { kind: "failed", error: new Error("briefdb: a batch answered too few outcomes") }));
    // what was queued meanwhile goes now, before the callers just answered submit again
    this.pump();
  }
}

/**
 * `statements` with `submit` going through a batcher over `applyBatch`. When `alone()` says so
 * (SQLite: the call comes from inside the transaction that holds the connection), the change is
 * applied at once as a batch of its own instead of joining others that must not share its fate.
 */
export function withBatching(
  statements: LedgerStatements,
  applyBatch: ApplyBatch,
  options: {
    readonly slots?: number;
    readonly alone?: () => boolean;
    /** Told of every change submitted to the batcher, as it is queued (close() waits for them). */
    readonly track?: (outcome: Promise<BatchOutcome>) => void;
  } = {},
): LedgerStatements {
  const batcher = new ChangeBatcher(applyBatch, ledgerLanes, options.slots ?? 1);
  const { alone, track } = options;
  return {
    ...statements,
    submit: async (change) => {
      if (alone?.()) {
        const [outcome] = await applyBatch([change]);
        return outcome ?? { kind: "failed", error: new Error("briefdb: a batch answered no outcome") };
      }
      const outcome = batcher.submit(change);
      track?.(outcome);
      return outcome;
    },
  };
}

/** A deduct's or credit's lanes: its user and its idempotency key. */
function ledgerLanes(change: BalanceChange): Lanes {
  return { userId: change.userId, key: change.idempotencyKey };
}
