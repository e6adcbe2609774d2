/**
 * Writes a caller started and did not wait for (monitorQuery's query-log samples), and batched
 * token changes still queued or in flight: a database keeps them here so that close() can let
 * them finish before the connection goes away.
 */
export class BackgroundWrites {
  private readonly pending = new Set<Promise<unknown>>();

  /** Keeps `write` until it settles; its failure is the writer's to report, not close()'s. */
  track(write: Promise<unknown>): void {
    const settled = write.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  /**
   * Resolves once every tracked write, including those tracked meanwhile, has settled, or at
   * `deadline` (epoch ms) if one is given, whichever comes first.
   */
  async settle(deadline?: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late =
      deadline === undefined ? undefined : new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))));
    try {
      while (this.pending.size > 0) {
        const all = Promise.all(this.pending).then(() => false);
        if (late === undefined ? await all : await Promise.race([all, late.then(() => true)])) return;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

const BY_DATABASE = new WeakMap<object, BackgroundWrites>();

/**
 * The background writes of database `db`, kept beside it rather than on its public type: monitorQuery
 * tracks its samples here, and the dialect's close() settles them.
 */
export function backgroundWritesOf(db: object): BackgroundWrites {
  let writes = BY_DATABASE.get(db);
  if (writes === undefined) {
    writes = new BackgroundWrites();
    BY_DATABASE.set(db, writes);
  }
  return writes;
}
