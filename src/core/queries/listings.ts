/**
 * The app's canonical read queries — the listing pages, a user's briefs, a brief's reviews, a
 * user's ledger, a brief by slug — each written so that one index of the schema serves both its
 * WHERE and its ORDER BY, and each wrapped in monitorQuery. `slow-queries --probe` times these
 * same functions and explains these same statements.
 */
import { sql, type SQL } from "drizzle-orm";
import type { BriefDatabase, LedgerEntry, Row } from "../../db/database.js";
import { dateFromEpochMs } from "../../db/inspection.js";
import { ledgerEntryFromRow, type LedgerRow } from "../../db/ledger-row.js";
import { BriefdbError } from "../../errors.js";
import { monitorQuery, type MonitorOptions } from "./monitor.js";

export const DEFAULT_LISTING_LIMIT = 20;
const MAX_LISTING_LIMIT = 1000;

export interface ListingOptions {
  /** Rows per page, 1..1000. Default 20. */
  readonly limit?: number;
  /** How the query is monitored. Default: slow samples are recorded in `db`'s own query log. */
  readonly monitor?: MonitorOptions;
}

export interface BriefSummary {
  readonly id: string;
  readonly slug: string;
  readonly title: string;
  readonly userId: string;
  readonly modelId: string;
  readonly published: boolean;
  readonly viewCount: number;
  readonly createdAt: Date;
}

export interface Brief extends BriefSummary {
  readonly content: string;
}

export interface Review {
  readonly id: string;
  readonly briefId: string;
  readonly userId: string;
  readonly rating: number;
  readonly comment: string | null;
  readonly createdAt: Date;
}

/** The statements, by listing name: what the listing functions run and what the probes explain. */
export const listingQueries = {
  publishedBriefsByViews: (db: BriefDatabase, limit: number) =>
    sql`SELECT ${briefColumns(db)} FROM briefs WHERE published = TRUE ORDER BY view_count DESC LIMIT ${limit}`,
  publishedBriefsByDate: (db: BriefDatabase, limit: number) =>
    sql`SELECT ${briefColumns(db)} FROM briefs WHERE published = TRUE ORDER BY created_at DESC LIMIT ${limit}`,
  userBriefs: (db: BriefDatabase, userId: string, limit: number) =>
    sql`SELECT ${briefColumns(db)} FROM briefs WHERE user_id = ${userId} ORDER BY created_at DESC LIMIT ${limit}`,
  briefReviews: (db: BriefDatabase, briefId: string, limit: number) =>
    sql`SELECT id, brief_id, user_id, rating, comment, ${createdAt(db)}
        FROM reviews WHERE brief_id = ${briefId} ORDER BY created_at DESC LIMIT ${limit}`,
  userTokenHistory: (db: BriefDatabase, userId: string, limit: number) =>
    sql`SELECT id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, hold_id, ${createdAt(db)}
        FROM token_transactions WHERE user_id = ${userId} ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
  briefBySlug: (db: BriefDatabase, slug: string) =>
    sql`SELECT ${briefColumns(db)}, content FROM briefs WHERE slug = ${slug}`,
} as const;

export type ListingName = keyof typeof listingQueries;

/** The home page: published briefs, most viewed first. */
export async function publishedBriefsByViews(db: BriefDatabase, options: ListingOptions = {}): Promise<BriefSummary[]> {
  const rows = await monitored(db, "publishedBriefsByViews", listingQueries.publishedBriefsByViews(db, limitOf(options)), options);
  return rows.map(toBriefSummary);
}

/** The latest page: published briefs, newest first. */
export async function publishedBriefsByDate(db: BriefDatabase, options: ListingOptions = {}): Promise<BriefSummary[]> {
  const rows = await monitored(db, "publishedBriefsByDate", listingQueries.publishedBriefsByDate(db, limitOf(options)), options);
  return rows.map(toBriefSummary);
}

/** A user's own briefs, published or not, newest first. */
export async function userBriefs(db: BriefDatabase, userId: string, options: ListingOptions = {}): Promise<BriefSummary[]> {
  const rows = await monitored(db, "userBriefs", listingQueries.userBriefs(db, userId, limitOf(options)), options);
  return rows.map(toBriefSummary);
}

/** A brief's reviews, newest first. */
export async function briefReviews(db: BriefDatabase, briefId: string, options: ListingOptions = {}): Promise<Review[]> {
  const rows = await monitored(db, "briefReviews", listingQueries.briefReviews(db, briefId, limitOf(options)), options);
  return rows.map((row) => ({
    id: String(row.id),
    briefId: String(row.brief_id),
    userId: String(row.user_id),
    rating: Number(row.rating),
    comment: row.comment === null ? null : String(row.comment),
    createdAt: dateFromEpochMs(row.created_at_ms),
  }));
}

/** A user's ledger, newest first. */
export async function userTokenHistory(db: BriefDatabase, userId: string, options: ListingOptions = {}): Promise<LedgerEntry[]> {
  const rows = await monitored(db, "userTokenHistory", listingQueries.userTokenHistory(db, userId, limitOf(options)), options);
  return (rows as LedgerRow[]).map(ledgerEntryFromRow);
}

/** One brief's page, by its slug; null when no brief has it. */
export async function briefBySlug(db: BriefDatabase, slug: string, options: Pick<ListingOptions, "monitor"> = {}): Promise<Brief | null> {
  const [row] = await monitored(db, "briefBySlug", listingQueries.briefBySlug(db, slug), options);
  return row === undefined ? null : { ...toBriefSummary(row), content: String(row.content) };
}

function monitored(db: BriefDatabase, name: ListingName, query: SQL, options: ListingOptions): Promise<Row[]> {
  return monitorQuery(name, () => db.all(query), options.monitor ?? { db });
}

function limitOf(options: ListingOptions): number {
  const limit = options.limit ?? DEFAULT_LISTING_LIMIT;
  if (Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_LISTING_LIMIT) return limit;
  throw new BriefdbError("USAGE", `a listing limit is a whole number from 1 to ${MAX_LISTING_LIMIT}, not ${limit}`);
}

function briefColumns(db: BriefDatabase): SQL {
  return sql`id, slug, title, user_id, model_id, published, view_count, ${createdAt(db)}`;
}

/**
 * created_at as epoch ms, under another name: an output column called created_at would be what
 * ORDER BY created_at sorts by on PostgreSQL, and an expression cannot use the index.
 */
function createdAt(db: BriefDatabase): SQL {
  return sql`${db.time.epochMs(sql`created_at`)} AS created_at_ms`;
}

function toBriefSummary(row: Row): BriefSummary {
  return {
    id: String(row.id),
    slug: String(row.slug),
    title: String(row.title),
    userId: String(row.user_id),
    modelId: String(row.model_id),
    published: row.published === true || row.published === 1,
    viewCount: Number(row.view_count),
    createdAt: dateFromEpochMs(row.created_at_ms),
  };
}
