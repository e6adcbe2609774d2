/**
 * `race-test --mode holds`: n operations — holds, captures of a random actual cost, releases,
 * expiries and plain deducts — fired truly in parallel (worker threads, each with its own
 * connection) at one throw-away user, then every hold invariant checked. Before the start a few
 * holds are placed with the shortest time to live and the start is fired just before they expire,
 * so that expiries land in the middle of the race. With the naive strategy the invariants must break.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { isBriefdbError } from "../../errors.js";
import { checkHolds } from "../ledger/hold-checks.js";
import { applyHold, getAvailableBalance } from "../ledger/holds.js";
import { raceShares, raceWorkerFile, runRacers, startRace, type Invariant, type RaceOptions, type RaceReport } from "./racers.js";
import { EXPECTED_REFUSALS, EXPIRING_TTL_SECONDS, emptyHoldsReport, type HoldsRacerReport, type HoldsRacerTask } from "./holds-racer.js";
import { elapsedMs, latencyHistogram, summarizePercentiles } from "../stats.js";
import { getBalance } from "../ledger/tokens.js";
import { removeUser } from "../ledger/users.js";

/** Fire the start this long before the pre-placed holds expire. */
const START_BEFORE_EXPIRY_MS = 100;

export async function runHoldsRace(db: BriefDatabase, options: RaceOptions): Promise<RaceReport> {
  const { n, amount, strategy, initialBalance, concurrency, userId } = await startRace(db, options);
  try {
    const expiring = await placeExpiringHolds(db, userId, amount, concurrency);
    const startLine = new SharedArrayBuffer(8);
    const tasks = raceShares(n, concurrency).map(
      (count, i): HoldsRacerTask => ({ target: db.target, openOptions: options.openOptions ?? {}, userId, count, amount, strategy, seed: i + 1, startLine }),
    );
    const notBefore = expiring.length === 0 ? 0 : Math.min(...expiring.map((h) => h.expiresAt)) - START_BEFORE_EXPIRY_MS;
    const { reports, startedAt } = await runRacers(raceWorkerFile("holds-worker"), tasks, startLine, (error) => ({ ...emptyHoldsReport(), errors: [error] }), notBefore);
    const durationMs = elapsedMs(startedAt);
    const tallies = mergeTallies(reports);
    const errorList = reports.flatMap((r) => r.errors);
    const invariants = await checkRace(db, userId, initialBalance, reports);
    const count = (outcomes: readonly string[]) =>
      Object.values(tallies).reduce((total, byOutcome) => total + outcomes.reduce((sum, o) => sum + (byOutcome[o] ?? 0), 0), 0);
    tallies.expiry = await expiryTally(db, userId);
    return {
      ok: invariants.every((i) => i.ok),
      mode: "holds",
      strategy,
      userId,
      kept: options.keep === true,
      n,
      amount,
      concurrency,
      successes: count(["ok"]),
      rejected: count(EXPECTED_REFUSALS),
      errors: errorList.length,
      errorSamples: errorList.slice(0, 10),
      initialBalance,
      finalBalance: await getBalance(db, userId),
      invariants,
      durationMs: Math.round(durationMs * 1000) / 1000,
      throughputPerSec: Math.round((n / durationMs) * 1000 * 10) / 10,
      latencyMs: summarizePercentiles(reports.flatMap((r) => r.latenciesMs)),
      latencyHistogram: latencyHistogram(reports.flatMap((r) => r.latenciesMs)),
      operations: tallies,
    };
  } finally {
    if (!options.keep) await removeUser(db, userId);
  }
}

/** One hold per racer that expires a moment after the start (fewer when the balance is short). */
async function placeExpiringHolds(db: BriefDatabase, userId: string, amount: number, count: number) {
  const placed: Array<{ expiresAt: number }> = [];
  for (let i = 0; i < count; i++) {
    try {
      const hold = await applyHold(db, userId, amount, "race-test (expiring)", { ttlSeconds: EXPIRING_TTL_SECONDS });
      placed.push({ expiresAt: hold.expiresAt.getTime() });
    } catch (error) {
      if (isBriefdbError(error) && error.code === "INSUFFICIENT_BALANCE") break;
      throw error;
    }
  }
  return placed;
}

function mergeTallies(reports: readonly HoldsRacerReport[]): Record<string, Record<string, number>> {
  const merged: Record<string, Record<string, number>> = {};
  for (const report of reports) {
    for (const [operation, outcomes] of Object.entries(report.tallies)) {
      const into = (merged[operation] ??= {});
      for (const [outcome, n] of Object.entries(outcomes)) into[outcome] = (into[outcome] ?? 0) + n;
    }
  }
  return merged;
}

async function expiryTally(db: BriefDatabase, userId: string): Promise<Record<string, number>> {
  const [row] = await db.all<{ swept: number | string | null; lapsed: number | string | null }>(sql`
    SELECT SUM(CASE WHEN status = 'expired' THEN 1 ELSE 0 END) AS swept,
      SUM(CASE WHEN status = 'active' AND expires_at <= ${db.holds.clock} THEN 1 ELSE 0 END) AS lapsed
    FROM token_holds WHERE user_id = ${userId}`);
  return { "settled as expired": Number(row?.swept ?? 0), "lapsed, not yet swept": Number(row?.lapsed ?? 0) };
}

async function checkRace(db: BriefDatabase, userId: string, initialBalance: number, reports: readonly HoldsRacerReport[]): Promise<Invariant[]> {
  const errors = reports.flatMap((r) => r.errors);
  const captures = reports.flatMap((r) => r.captured);
  const settlements = [...captures.map(([id]) => id), ...reports.flatMap((r) => r.released)];
  const twice = settlements.filter((id, i) => settlements.indexOf(id) !== i);
  const deducted = reports.reduce((total, r) => total + r.deducted, 0);
  const captured = captures.reduce((total, [, charged]) => total + charged, 0);
  const lowestSeen = Math.min(...reports.map((r) => r.lowestSeen));
  const account = await getAvailableBalance(db, userId);
  const [ledger] = await db.all<{ total: number | string | null; plain: number | string | null; held: number | string | null }>(sql`
    SELECT SUM(amount) AS total,
      SUM(CASE WHEN type = 'deduct' AND hold_id IS NULL THEN -amount ELSE 0 END) AS plain,
      SUM(CASE WHEN hold_id IS NOT NULL THEN -amount ELSE 0 END) AS held
    FROM token_transactions WHERE user_id = ${userId}`);
  const capturedRows = await db.all<{ id: string; captured_amount: number | string }>(
    sql`SELECT id, captured_amount FROM token_holds WHERE user_id = ${userId} AND status = 'captured' ORDER BY id`,
  );
  const reportedCaptures = captures.map(([id, charged]) => `${id}:${charged}`).sort();
  const storedCaptures = capturedRows.map((r) => `${r.id}:${Number(r.captured_amount)}`).sort();
  const violations = await checkHolds(db, userId);
  const ledgerSum = Number(ledger?.total ?? 0);
  const expectedBalance = initialBalance - deducted - captured;
  return [
    {
      name: "no error other than the expected refusals",
      ok: errors.length === 0,
      detail: errors.length === 0 ? `none (refusals: ${EXPECTED_REFUSALS.join(", ")})` : `${errors.length} errors, first: ${errors[0]}`,
    },
    {
      name: "every hold settled at most once",
      ok: twice.length === 0,
      detail: twice.length === 0 ? `${settlements.length} settlements, each of its own hold` : `${twice.length} holds settled twice, e.g. ${twice[0]}`,
    },
    {
      name: "balance = opening − deducts − captures = the ledger's sum",
      ok: account.balance === expectedBalance && ledgerSum === account.balance && Number(ledger?.plain ?? 0) === deducted && Number(ledger?.held ?? 0) === captured,
      detail: `balance ${account.balance}, expected ${expectedBalance} (${deducted} deducted, ${captured} captured); ledger sums to ${ledgerSum}`,
    },
    {
      name: "captured holds are exactly the captures that succeeded, one ledger row each, none over its hold",
      ok: reportedCaptures.join() === storedCaptures.join() && !violations.some((v) => v.rule.startsWith("capture")),
      detail: `${reportedCaptures.length} captures reported, ${storedCaptures.length} holds captured${describe(violations.filter((v) => v.rule.startsWith("capture")))}`,
    },
    {
      name: "active holds never exceed the balance, and held_tokens is their sum",
      ok: !violations.some((v) => v.rule.startsWith("held")),
      detail: `balance ${account.balance}, held ${account.held}, available ${account.available}${describe(violations.filter((v) => v.rule.startsWith("held")))}`,
    },
    {
      name: "balance and available never below zero",
      ok: lowestSeen >= 0 && account.balance >= 0 && account.available >= 0,
      detail: `lowest reported by an operation ${lowestSeen === Number.MAX_SAFE_INTEGER ? "-" : lowestSeen}; final available ${account.available}`,
    },
  ];
}

function describe(violations: ReadonlyArray<{ rule: string; detail: string }>): string {
  return violations.length === 0 ? "" : `; ${violations.map((v) => `${v.rule}: ${v.detail}`).join("; ")}`;
}
