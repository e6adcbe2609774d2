/**
 * Batching of holds and captures, over the same batcher as deducts: a hold's lane is
 * its user; a capture's is the user of its hold and the hold id as its key (never two captures of
 * one hold in flight). A capture names a hold, not a user, so the user comes from a bounded map of
 * the holds this database object placed (batched or not); a capture of a hold not in it (placed by
 * another process, or pushed out of the map) is left to the caller's single statement.
 */
import { ChangeBatcher, type ApplyChanges, type Lanes } from "./change-batcher.js";
import type { CaptureOutcome, HoldChange, HoldOutcome, HoldStatements, PlaceOutcome } from "./holds.js";

/** How many hold ids the map keeps (the oldest go first): ~100 bytes each. */
export const HOLD_USERS_LIMIT = 100_000;

/** Hold id → user id for holds placed here, oldest dropped first past `limit`. */
export class HoldUsers {
  private readonly users = new Map<string, string>();

  constructor(private readonly limit = HOLD_USERS_LIMIT) {}

  remember(holdId: string, userId: string): void {
    this.users.set(holdId, userId);
    if (this.users.size > this.limit) {
      const oldest = this.users.keys().next().value;
      if (oldest !== undefined) this.users.delete(oldest);
    }
  }

  userOf(holdId: string): string | undefined {
    return this.users.get(holdId);
  }

  /** A settled hold is never captured again by this object (a repeat is read back, not batched). */
  forget(holdId: string): void {
    this.users.delete(holdId);
  }
}

/**
 * `statements` with submitPlace and submitCapture going through a batcher over `applyBatch`, and
 * every hold placed (batched or not) remembered with its user.
 */
export function withHoldBatching(
  statements: HoldStatements,
  applyBatch: ApplyChanges<HoldChange, HoldOutcome>,
  options: {
    readonly slots?: number;
    /** Told of every change submitted to the batcher, as it is queued (close() waits for them). */
    readonly track?: (outcome: Promise<unknown>) => void;
    readonly users?: HoldUsers;
  } = {},
): HoldStatements {
  const batcher = new ChangeBatcher(applyBatch, holdLanes, options.slots ?? 1);
  const users = options.users ?? new HoldUsers();
  const submit = (change: HoldChange) => {
    const outcome = batcher.submit(change);
    options.track?.(outcome);
    return outcome;
  };
  return {
    ...statements,
    async place(hold, applyOptions) {
      const placed = await statements.place(hold, applyOptions);
      if (placed !== undefined) users.remember(placed.hold.id, placed.hold.userId);
      return placed;
    },
    async capture(holdId, amount, ledgerId, applyOptions) {
      const captured = await statements.capture(holdId, amount, ledgerId, applyOptions);
      if (captured !== undefined) users.forget(holdId);
      return captured;
    },
    async release(holdId, applyOptions) {
      const released = await statements.release(holdId, applyOptions);
      if (released !== undefined) users.forget(holdId);
      return released;
    },
    async submitPlace(hold) {
      const outcome = (await submit({ kind: "place", hold })) as PlaceOutcome;
      if (outcome.kind === "placed") users.remember(hold.id, hold.userId);
      return outcome;
    },
    submitCapture(holdId, amount, ledgerId) {
      const userId = users.userOf(holdId);
      if (userId === undefined) return undefined;
      return submit({ kind: "capture", capture: { holdId, userId, amount, ledgerId } }).then((outcome) => {
        if (outcome.kind === "captured") users.forget(holdId);
        return outcome as CaptureOutcome;
      });
    },
  };
}

function holdLanes(change: HoldChange): Lanes {
  return change.kind === "place"
    ? { userId: change.hold.userId, key: null }
    : { userId: change.capture.userId, key: change.capture.holdId };
}
