/**
 * The probes behind `slow-queries --probe`: each canonical listing run against the current data a
 * number of times (p50/p95/max), its plan, whether that plan reads through an index, and — when
 * it scans a whole table or sorts what it read — the statement that would fix it.
 */
import type { SQL } from "drizzle-orm";
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import type { PlanReading } from "../../db/inspection.js";
import { BriefdbError } from "../../errors.js";
import {
  briefBySlug,
  briefReviews,
  DEFAULT_LISTING_LIMIT,
  listingQueries,
  publishedBriefsByDate,
  publishedBriefsByViews,
  userBriefs,
  userTokenHistory,
  type ListingName,
  type ListingOptions,
} from "./listings.js";
import { assertMigrated } from "../migrate/records.js";
import { elapsedMs, summarizePercentiles } from "../stats.js";

export const DEFAULT_PROBE_RUNS = 20;
const MAX_PROBE_RUNS = 10_000;

export interface IndexDefinition {
  readonly name: string;
  readonly table: string;
  readonly columns: readonly string[];
  readonly unique: boolean;
}

export interface ProbeResult {
  readonly name: ListingName;
  readonly description: string;
  /** The user id, brief id or slug the probe ran with, taken from the data; null when it needs none or none exists. */
  readonly parameter: string | null;
  readonly runs: number;
  /** Rows the query returned. */
  readonly rows: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  readonly plan: readonly string[];
  readonly usesIndex: boolean;
  readonly fullScans: readonly string[];
  readonly indexes: readonly string[];
  readonly sorts: boolean;
  /** The index the schema has for this query. */
  readonly index: IndexDefinition;
  /** The statement that would fix the plan, or null when it needs no fixing. */
  readonly suggestion: string | null;
  /** Why the suggestion, when there is one. */
  readonly note: string | null;
}

interface Fix {
  readonly suggestion: string;
  readonly note: string;
}

interface ProbeArguments {
  readonly author: string | null;
  readonly slug: string | null;
  readonly reviewedBrief: string | null;
  readonly ledgerUser: string | null;
}

interface CanonicalProbe {
  readonly name: ListingName;
  readonly description: string;
  readonly parameter: keyof ProbeArguments | null;
  readonly index: IndexDefinition;
  readonly statement: (db: BriefDatabase, argument: string) => SQL;
  /** Runs the library's listing function; resolves to the number of rows it returned. */
  readonly run: (db: BriefDatabase, argument: string, options: ListingOptions) => Promise<number>;
}

const limit = DEFAULT_LISTING_LIMIT;
const PROBES: readonly CanonicalProbe[] = [
  {
    name: "publishedBriefsByViews",
    description: "published briefs, most viewed first",
    parameter: null,
    index: { name: "briefs_published_view_count_idx", table: "briefs", columns: ["published", "view_count"], unique: false },
    statement: (db) => listingQueries.publishedBriefsByViews(db, limit),
    run: async (db, _argument, options) => (await publishedBriefsByViews(db, options)).length,
  },
  {
    name: "publishedBriefsByDate",
    description: "published briefs, newest first",
    parameter: null,
    index: { name: "briefs_published_created_at_idx", table: "briefs", columns: ["published", "created_at"], unique: false },
    statement: (db) => listingQueries.publishedBriefsByDate(db, limit),
    run: async (db, _argument, options) => (await publishedBriefsByDate(db, options)).length,
  },
  {
    name: "userBriefs",
    description: "a user's briefs, newest first",
    parameter: "author",
    index: { name: "briefs_user_id_created_at_idx", table: "briefs", columns: ["user_id", "created_at"], unique: false },
    statement: (db, userId) => listingQueries.userBriefs(db, userId, limit),
    run: async (db, userId, options) => (await userBriefs(db, userId, options)).length,
  },
  {
    name: "briefReviews",
    description: "a brief's reviews, newest first",
    parameter: "reviewedBrief",
    index: { name: "reviews_brief_id_created_at_idx", table: "reviews", columns: ["brief_id", "created_at"], unique: false },
    statement: (db, briefId) => listingQueries.briefReviews(db, briefId, limit),
    run: async (db, briefId, options) => (await briefReviews(db, briefId, options)).length,
  },
  {
    name: "userTokenHistory",
    description: "a user's token ledger, newest first",
    parameter: "ledgerUser",
    index: {
      name: "token_transactions_user_id_created_at_idx",
      table: "token_transactions",
      columns: ["user_id", "created_at", "id"],
      unique: false,
    },
    statement: (db, userId) => listingQueries.userTokenHistory(db, userId, limit),
    run: async (db, userId, options) => (await userTokenHistory(db, userId, options)).length,
  },
  {
    name: "briefBySlug",
    description: "one brief by its slug",
    parameter: "slug",
    index: { name: "briefs_slug_unique", table: "briefs", columns: ["slug"], unique: true },
    statement: (db, slug) => listingQueries.briefBySlug(db, slug),
    run: async (db, slug, options) => ((await briefBySlug(db, slug, options)) === null ? 0 : 1),
  },
];

/** Probes never write to the query log nor the console: they measure, the report shows. */
const QUIET: ListingOptions = { monitor: { logger: () => {} } };

export async function probeCanonicalQueries(db: BriefDatabase, options: { runs?: number } = {}): Promise<ProbeResult[]> {
  const runs = options.runs ?? DEFAULT_PROBE_RUNS;
  if (!Number.isSafeInteger(runs) || runs < 1 || runs > MAX_PROBE_RUNS) {
    throw new BriefdbError("USAGE", `probe runs must be a whole number from 1 to ${MAX_PROBE_RUNS}, not ${runs}`);
  }
  await assertMigrated(db);
  const parameters = await parametersFromData(db);
  const results: ProbeResult[] = [];
  for (const probe of PROBES) {
    results.push(await runProbe(db, probe, probe.parameter ? parameters[probe.parameter] : null, runs));
  }
  return results;
}

async function runProbe(db: BriefDatabase, probe: CanonicalProbe, parameter: string | null, runs: number): Promise<ProbeResult> {
  // With no row to take a parameter from, a value that matches nothing still shows the plan.
  const argument = parameter ?? "";
  const plan = await db.explain(probe.statement(db, argument));
  const reading = db.inspector.readPlan(plan);
  let rows = await probe.run(db, argument, QUIET); // warm-up: the first run pays for caches and statement preparation
  const timings: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    rows = await probe.run(db, argument, QUIET);
    timings.push(elapsedMs(start));
  }
  const { p50, p95, max } = summarizePercentiles(timings);
  const fix = await fixFor(db, probe.index, reading);
  return {
    name: probe.name,
    description: probe.description,
    parameter,
    runs,
    rows,
    p50Ms: p50,
    p95Ms: p95,
    maxMs: max,
    plan,
    ...reading,
    index: probe.index,
    suggestion: fix?.suggestion ?? null,
    note: fix?.note ?? null,
  };
}

/**
 * A full scan, or a sort the schema's index would have saved, needs fixing. When that index
 * exists the planner chose otherwise: a sort of the few rows an index found is its call to make,
 * a full scan despite the index usually means stale statistics or a table too small to matter.
 */
async function fixFor(db: BriefDatabase, index: IndexDefinition, reading: PlanReading): Promise<Fix | null> {
  if (reading.usesIndex && !reading.sorts) return null;
  if (await db.inspector.indexExists(index.name)) {
    if (reading.usesIndex) return null;
    return {
      suggestion: `ANALYZE ${index.table}`,
      note:
        `${index.name} exists but the planner read ${index.table} whole: ` +
        "its statistics may be stale, or the table small enough that this is cheaper",
    };
  }
  const unique = index.unique ? "UNIQUE " : "";
  const problem = reading.usesIndex ? `sorts the rows it read from ${index.table}` : `reads every row of ${index.table}`;
  return {
    suggestion: `CREATE ${unique}INDEX ${index.name} ON ${index.table} (${index.columns.join(", ")})`,
    note: `${index.name} is missing: the query ${problem}`,
  };
}

/** The newest rows' keys: the user, brief and slug the app is likeliest to be reading right now. */
async function parametersFromData(db: BriefDatabase): Promise<ProbeArguments> {
  const [brief] = await db.all<{ user_id: string; slug: string }>(
    sql`SELECT user_id, slug FROM briefs ORDER BY created_at DESC LIMIT 1`,
  );
  const [review] = await db.all<{ brief_id: string }>(sql`SELECT brief_id FROM reviews ORDER BY created_at DESC LIMIT 1`);
  const [entry] = await db.all<{ user_id: string }>(
    sql`SELECT user_id FROM token_transactions ORDER BY created_at DESC LIMIT 1`,
  );
  return {
    author: brief?.user_id ?? null,
    slug: brief?.slug ?? null,
    reviewedBrief: review?.brief_id ?? null,
    ledgerUser: entry?.user_id ?? null,
  };
}
