/**
 * The rows `seed` writes, generated lazily table by table from the seed alone: same seed and
 * sizes, same rows (ids, timestamps and all) on every dialect and every run. Timestamps count back
 * from a fixed moment, never from now.
 *
 * Seeded rows are marked so that `clear` and a re-seed can find exactly them: every id starts with
 * `seed-`, every email ends with `@seed.example`, every slug carries `seed`, so none can collide
 * with a row the app wrote.
 */
import type { BulkColumn, BulkRow } from "../../db/database.js";
import { Random, rowRandom, streamKey } from "../prng.js";
import type { SeedSizes } from "./seed-sizes.js";
import * as words from "./vocabulary.js";

export const SEED_ID_PREFIX = "seed-";

export type SeedTableName = "models" | "users" | "briefs" | "reviews" | "token_transactions";

export interface SeedTable {
  readonly name: SeedTableName;
  readonly columns: readonly BulkColumn[];
  readonly count: number;
  rows(): Iterable<BulkRow>;
}

/** Seeded history ends here, whatever the day the seed runs. */
const HISTORY_END = Date.UTC(2025, 0, 1);
const DAY = 86_400_000;
/** Views are capped well inside a PostgreSQL integer. */
const MAX_VIEWS = 5_000_000;

const text = (name: string): BulkColumn => ({ name, type: "text" });
const integer = (name: string): BulkColumn => ({ name, type: "integer" });
const timestamp = (name: string): BulkColumn => ({ name, type: "timestamp" });

/** Every seeded table in foreign-key order, each with its columns, size and row generator. */
export function seedTables(seed: number, sizes: SeedSizes): SeedTable[] {
  const keys = {
    models: streamKey(seed, "models"),
    users: streamKey(seed, "users"),
    briefs: streamKey(seed, "briefs"),
    reviews: streamKey(seed, "reviews"),
    ledger: streamKey(seed, "token_transactions"),
  };
  const ledger = new LedgerPlan(keys.ledger, keys.users, sizes);
  return [
    {
      name: "models",
      columns: [text("id"), text("name"), text("provider"), text("slug"), timestamp("created_at")],
      count: words.MODELS.length,
      rows: () => modelRows(keys.models),
    },
    {
      name: "users",
      columns: [text("id"), text("email"), text("name"), integer("token_balance"), timestamp("created_at"), timestamp("updated_at")],
      count: sizes.users,
      rows: () => userRows(keys.users, sizes.users, ledger),
    },
    {
      name: "briefs",
      columns: [
        text("id"), text("slug"), text("title"), text("content"), text("user_id"), text("model_id"),
        { name: "published", type: "boolean" }, integer("view_count"), timestamp("created_at"), timestamp("updated_at"),
      ],
      count: sizes.briefs,
      rows: () => briefRows(keys.briefs, keys.users, sizes),
    },
    {
      name: "reviews",
      columns: [text("id"), text("brief_id"), text("user_id"), integer("rating"), text("comment"), timestamp("created_at")],
      count: sizes.reviews,
      rows: () => reviewRows(keys, sizes),
    },
    {
      name: "token_transactions",
      columns: [
        text("id"), text("user_id"), integer("amount"), text("type"), text("reason"), text("brief_id"),
        integer("balance_after"), timestamp("created_at"),
      ],
      count: sizes.transactions,
      rows: () => ledger.rows(),
    },
  ];
}

function* modelRows(key: number): Generator<BulkRow> {
  for (const [i, model] of words.MODELS.entries()) {
    const createdAt = HISTORY_END - 400 * DAY - Math.floor(rowRandom(key, i).next() * 400 * DAY);
    yield [`${SEED_ID_PREFIX}model-${i + 1}`, model.name, model.provider, `seed-${model.slug}`, createdAt];
  }
}

/** When user `index` signed up: the first draw of its generator, so briefs can look it up. */
function userCreatedAt(random: Random): number {
  return HISTORY_END - 30 * DAY - Math.floor(random.next() * 700 * DAY);
}

function* userRows(key: number, count: number, ledger: LedgerPlan): Generator<BulkRow> {
  for (let i = 0; i < count; i++) {
    const random = rowRandom(key, i);
    const createdAt = userCreatedAt(random);
    const first = random.pick(words.FIRST_NAMES);
    const last = random.pick(words.LAST_NAMES);
    const email = `${first}.${last}.${i + 1}@seed.example`.toLowerCase();
    const { balance, lastAt } = ledger.closingOf(i, createdAt);
    yield [userId(i), email, `${first} ${last}`, balance, createdAt, lastAt];
  }
}

/** The author and date of brief `index`: its first draws, so reviews can rebuild them. */
function briefBasics(random: Random, usersKey: number, users: number): { author: number; createdAt: number } {
  const author = random.skewed(users, 2);
  const joined = userCreatedAt(rowRandom(usersKey, author));
  return { author, createdAt: joined + Math.floor(random.next() * (HISTORY_END - joined)) };
}

function* briefRows(key: number, usersKey: number, sizes: SeedSizes): Generator<BulkRow> {
  for (let i = 0; i < sizes.briefs; i++) {
    const random = rowRandom(key, i);
    const { author, createdAt } = briefBasics(random, usersKey, sizes.users);
    const model = random.skewed(words.MODELS.length, 2);
    const topic = random.pick(words.TOPICS);
    const audience = random.pick(words.AUDIENCES);
    const title = capitalise(
      random.pick(words.TITLE_PATTERNS).replace("{t}", topic).replace("{a}", audience).replace("{n}", String(random.int(3, 12))),
    );
    const sentences = [`This brief covers ${topic} for ${audience}.`];
    // Consecutive steps of 3 through 10 sentences never repeat one within a brief.
    const first = random.int(0, words.SENTENCES.length - 1);
    for (let s = random.int(2, 5); s > 0; s--) sentences.push(words.SENTENCES[(first + 3 * s) % words.SENTENCES.length] ?? "");
    const published = random.chance(0.75);
    // A long tail: most briefs are read a few dozen times, a handful hundreds of thousands.
    const x = random.next();
    const views = published ? Math.min(MAX_VIEWS, Math.floor((20 * x) / (1 - x))) : 0;
    const updatedAt = createdAt + Math.floor(random.next() * 30 * DAY);
    const slug = `${title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "")}-seed-${i + 1}`;
    const modelId = `${SEED_ID_PREFIX}model-${model + 1}`;
    yield [briefId(i), slug, title, sentences.join(" "), userId(author), modelId, published, views, createdAt, updatedAt];
  }
}

function* reviewRows(keys: { reviews: number; briefs: number; users: number }, sizes: SeedSizes): Generator<BulkRow> {
  for (let i = 0; i < sizes.reviews; i++) {
    const random = rowRandom(keys.reviews, i);
    const brief = random.skewed(sizes.briefs, 3);
    const written = briefBasics(rowRandom(keys.briefs, brief), keys.users, sizes.users).createdAt;
    const reviewer = random.int(0, sizes.users - 1);
    const rating = ratingOf(random.next());
    const comment = random.chance(0.7) ? random.pick(words.REVIEW_COMMENTS[rating]) : null;
    const createdAt = written + Math.floor(random.next() * (HISTORY_END - written));
    yield [`${SEED_ID_PREFIX}review-${i + 1}`, briefId(brief), userId(reviewer), rating, comment, createdAt];
  }
}

/** Ratings lean positive, as they do in real apps. */
function ratingOf(x: number): 1 | 2 | 3 | 4 | 5 {
  if (x < 0.05) return 1;
  if (x < 0.13) return 2;
  if (x < 0.3) return 3;
  if (x < 0.65) return 4;
  return 5;
}

interface SeededLedgerRow {
  readonly amount: number;
  readonly reason: string;
  readonly brief: number | null;
  readonly balanceAfter: number;
  readonly at: number;
}

/**
 * The ledger: every user with any rows opens with a credit, then credits and deducts that never
 * overdraw. The first users are the busiest. A user's entries are generated twice from the same
 * draws — once for the user row's closing balance, once as ledger rows — so the balance equals
 * the sum of the ledger without holding either in memory.
 */
class LedgerPlan {
  private readonly openings: number;
  private readonly extra: number;

  constructor(
    private readonly key: number,
    private readonly usersKey: number,
    private readonly sizes: SeedSizes,
  ) {
    this.openings = Math.min(sizes.users, sizes.transactions);
    this.extra = sizes.transactions - this.openings;
  }

  /** How many ledger rows user `index` has: the share curve k(2U−k)/U² favours the first users. */
  countOf(index: number): number {
    const users = this.sizes.users;
    // The fraction is exactly 1 at k = U (both products are exact below 2^53), so the counts
    // telescope to exactly `transactions`.
    const share = (k: number) => Math.floor(this.extra * ((k * (2 * users - k)) / (users * users)));
    return (index < this.openings ? 1 : 0) + share(index + 1) - share(index);
  }

  closingOf(index: number, openedAt: number): { balance: number; lastAt: number } {
    let closing = { balance: 0, lastAt: openedAt };
    for (const entry of this.entriesOf(index, openedAt)) closing = { balance: entry.balanceAfter, lastAt: entry.at };
    return closing;
  }

  *rows(): Generator<BulkRow> {
    let n = 0;
    for (let i = 0; i < this.sizes.users; i++) {
      const openedAt = userCreatedAt(rowRandom(this.usersKey, i));
      for (const entry of this.entriesOf(i, openedAt)) {
        const type = entry.amount > 0 ? "credit" : "deduct";
        const brief = entry.brief === null ? null : briefId(entry.brief);
        n += 1;
        yield [`${SEED_ID_PREFIX}txn-${n}`, userId(i), entry.amount, type, entry.reason, brief, entry.balanceAfter, entry.at];
      }
    }
  }

  private *entriesOf(index: number, openedAt: number): Generator<SeededLedgerRow> {
    const count = this.countOf(index);
    const random = rowRandom(this.key, index);
    let balance = 0;
    let at = openedAt;
    for (let k = 0; k < count; k++) {
      let amount: number;
      let reason: string;
      let brief: number | null = null;
      if (k === 0) {
        amount = random.int(10, 500) * 10;
        reason = words.OPENING_REASON;
      } else {
        // Strictly later than the entry before, spread over what is left of the history.
        at += 1 + Math.floor((random.next() * Math.max(0, HISTORY_END - at)) / (count - k + 1));
        if (balance > 0 && random.chance(0.7)) {
          amount = -Math.min(balance, random.int(5, 250));
          reason = random.pick(words.DEDUCT_REASONS);
          if (this.sizes.briefs > 0) brief = random.int(0, this.sizes.briefs - 1);
        } else {
          amount = random.int(10, 200) * 10;
          reason = random.pick(words.CREDIT_REASONS);
        }
      }
      balance += amount;
      yield { amount, reason, brief, balanceAfter: balance, at };
    }
  }
}

function userId(index: number): string {
  return `${SEED_ID_PREFIX}user-${index + 1}`;
}

function briefId(index: number): string {
  return `${SEED_ID_PREFIX}brief-${index + 1}`;
}

function capitalise(title: string): string {
  return title.charAt(0).toUpperCase() + title.slice(1);
}
