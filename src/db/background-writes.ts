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

  /** Resolves once every tracked write, including those tracked meanwhile, has settled. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }
}
