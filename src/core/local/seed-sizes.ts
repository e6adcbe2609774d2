/**
 * How much test data to seed: the defaults, the named scales, and the checks a size must pass
 * before any database is touched. No dependencies, so the CLI can validate options cheaply.
 */
import { BriefdbError } from "../../errors.js";

export interface SeedSizes {
  readonly users: number;
  readonly briefs: number;
  readonly reviews: number;
  /** Ledger rows in all, the opening credits included. */
  readonly transactions: number;
}

export type SeedScale = "small" | "medium" | "large";
export const SEED_SCALES: readonly SeedScale[] = ["small", "medium", "large"];

export const DEFAULT_SIZES: SeedSizes = { users: 100, briefs: 1000, reviews: 3000, transactions: 5000 };

/** Named sizes: a quick look, a realistic app, and about a million rows for performance work. */
export const SCALES: Readonly<Record<SeedScale, SeedSizes>> = {
  small: { users: 20, briefs: 100, reviews: 300, transactions: 500 },
  medium: { users: 1000, briefs: 10_000, reviews: 30_000, transactions: 50_000 },
  large: { users: 10_000, briefs: 100_000, reviews: 300_000, transactions: 590_000 },
};

/** The seed used when none is given: a plain `seed` run is deterministic too. */
export const DEFAULT_SEED = 1;

/** A ceiling that keeps a typo (an extra few zeros) from filling the disk. */
export const MAX_ROWS_PER_TABLE = 50_000_000;

export interface SeedSizeOptions extends Partial<SeedSizes> {
  readonly scale?: SeedScale;
}

/** The sizes to seed: each given size, else the scale's, else the default; checked. */
export function resolveSeedSizes(options: SeedSizeOptions = {}): SeedSizes {
  if (options.scale !== undefined && !SEED_SCALES.includes(options.scale)) {
    throw new BriefdbError("USAGE", `unknown scale "${String(options.scale)}"`, `use one of ${SEED_SCALES.join(", ")}`);
  }
  const base = options.scale === undefined ? DEFAULT_SIZES : SCALES[options.scale];
  const sizes: SeedSizes = {
    users: checkedSize("users", options.users ?? base.users),
    briefs: checkedSize("briefs", options.briefs ?? base.briefs),
    reviews: checkedSize("reviews", options.reviews ?? base.reviews),
    transactions: checkedSize("transactions", options.transactions ?? base.transactions),
  };
  if (sizes.users === 0 && sizes.briefs + sizes.reviews + sizes.transactions > 0) {
    throw new BriefdbError("USAGE", "briefs, reviews and transactions need at least one user", "raise --users above 0");
  }
  if (sizes.briefs === 0 && sizes.reviews > 0) {
    throw new BriefdbError("USAGE", "reviews need at least one brief", "raise --briefs above 0");
  }
  return sizes;
}

/** The seed of the random generator: any whole number from 0 to 2^53−1. */
export function checkedSeed(seed: number): number {
  if (Number.isSafeInteger(seed) && seed >= 0) return seed;
  throw new BriefdbError("USAGE", `the seed must be a whole number from 0 to 2^53−1, not ${String(seed)}`);
}

function checkedSize(name: keyof SeedSizes, value: number): number {
  if (Number.isSafeInteger(value) && value >= 0 && value <= MAX_ROWS_PER_TABLE) return value;
  throw new BriefdbError("USAGE", `${name} must be a whole number from 0 to ${MAX_ROWS_PER_TABLE}, not ${String(value)}`);
}
