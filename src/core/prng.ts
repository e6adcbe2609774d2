/**
 * The seeded randomness behind test data. Counter-based: every row draws from its own generator,
 * keyed by (seed, table, row number), so any row can be rebuilt on its own (a review can know
 * when its brief was written without keeping every brief in memory) and the same seed gives the
 * same rows whatever the sizes of the other tables. Integer arithmetic only (Math.imul), so the
 * numbers are the same on every platform and Node version.
 */

/** A 32-bit stream key for one table of one seed. */
export function streamKey(seed: number, table: string): number {
  let key = mix(Math.floor(seed / 2 ** 32) >>> 0, seed >>> 0);
  for (let i = 0; i < table.length; i++) key = mix(key, table.charCodeAt(i));
  return key;
}

/** The generator of row `index` in the stream `key`. */
export function rowRandom(key: number, index: number): Random {
  return new Random(mix(key, index >>> 0) ^ mix(index >>> 0, key));
}

/** mulberry32: tiny, fast, and good enough for test data (not for secrets). */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed | 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A whole number in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /**
   * A whole number in [0, count) that favours small values, more so the higher the (whole)
   * power: index 0 is the most popular. Multiplies instead of Math.pow to stay exact everywhere.
   */
  skewed(count: number, power = 2): number {
    const x = this.next();
    let y = x;
    for (let i = 1; i < power; i++) y *= x;
    return Math.floor(count * y);
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
}

/** Two 32-bit words into one, with murmur3's finaliser for avalanche. */
function mix(a: number, b: number): number {
  let h = (a ^ Math.imul(b ^ (b >>> 16), 0x9e3779b1)) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
