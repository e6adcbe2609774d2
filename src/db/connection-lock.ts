/**
 * A FIFO lock for one connection. better-sqlite3 is synchronous, so a synchronous unit of work can
 * never interleave with another; an async transaction can, and this lock queues such units so that
 * one connection never has two transactions open at once.
 */
export class ConnectionLock {
  private held = false;
  private readonly waiters: Array<() => void> = [];

  get isHeld(): boolean {
    return this.held;
  }

  async run<T>(work: () => Promise<T> | T): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}
