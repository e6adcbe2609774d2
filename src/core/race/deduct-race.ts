/**
 * race-test's deducts mode: n deductions fired truly in parallel (worker threads, each with its own
 * connection) at a throw-away user, then the ledger invariants checked. With the naive strategy the
 * invariants must break: that is how we know the test can catch a race.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase, OpenOptions } from "../../db/database.js";
import { getBalance } from "../ledger/tokens.js";
import { removeUser } from "../ledger/users.js";
import { elapsedMs, latencyHistogram, summarizePercentiles } from "../stats.js";
import type { RacerReport, RacerTask } from "./deduct-racer.js";
import type { RaceStrategy } from "./options.js";
import { raceShares, raceWorkerFile, runRacers, startRace, type Invariant, type RaceOptions, type RaceReport } from "./racers.js";

export async function runDeductRace(db: BriefDatabase, options: RaceOptions): Promise<RaceReport> {
  const { n, amount, strategy, initialBalance, concurrency, userId } = await startRace(db, options);
  try {
    const { reports, startedAt } = await race(db, { userId, n, amount, strategy, concurrency, openOptions: options.openOptions ?? {} });
    const durationMs = elapsedMs(startedAt);
    const successes = sum(reports.map((r) => r.successes));
    const rejected = sum(reports.map((r) => r.rejected));
    const errorList = reports.flatMap((r) => r.errors);
    const invariants = await checkInvariants(db, { userId, n, amount, initialBalance, successes, errors: errorList });
    const finalBalance = await getBalance(db, userId);
    return {
      ok: invariants.every((i) => i.ok),
      mode: "deducts",
      strategy,
      batched: reports.length > 0 && reports.every((r) => r.batched),
      userId,
      kept: options.keep === true,
      n,
      amount,
      concurrency,
      successes,
      rejected,
      errors: errorList.length,
      errorSamples: errorList.slice(0, 10),
      initialBalance,
      finalBalance,
      invariants,
      durationMs: Math.round(durationMs * 1000) / 1000,
      throughputPerSec: Math.round((n / durationMs) * 1000 * 10) / 10,
      latencyMs: summarizePercentiles(reports.flatMap((r) => r.latenciesMs)),
      latencyHistogram: latencyHistogram(reports.flatMap((r) => r.latenciesMs)),
    };
  } finally {
    if (!options.keep) await removeUser(db, userId);
  }
}

interface RaceRun {
  readonly userId: string;
  readonly n: number;
  readonly amount: number;
  readonly strategy: RaceStrategy;
  readonly concurrency: number;
  readonly openOptions: OpenOptions;
}

/** Starts the racers, waits until all stand at the start line, fires the start, collects reports. */
async function race(db: BriefDatabase, run: RaceRun): Promise<{ reports: RacerReport[]; startedAt: bigint }> {
  const startLine = new SharedArrayBuffer(8);
  const shares = raceShares(run.n, run.concurrency);
  const tasks = shares.map((count): RacerTask => ({ target: db.target, openOptions: run.openOptions, userId: run.userId, count, amount: run.amount, strategy: run.strategy, startLine }));
  return runRacers(raceWorkerFile("deduct-worker"), tasks, startLine, (error) => ({ batched: run.openOptions.batch ?? true, successes: 0, rejected: 0, errors: [error], latenciesMs: [] }));
}

interface Tally {
  readonly userId: string;
  readonly n: number;
  readonly amount: number;
  readonly initialBalance: number;
  readonly successes: number;
  readonly errors: readonly string[];
}

async function checkInvariants(db: BriefDatabase, t: Tally): Promise<Invariant[]> {
  const expectedSuccesses = Math.min(t.n, Math.floor(t.initialBalance / t.amount));
  const expectedFinal = t.initialBalance - expectedSuccesses * t.amount;
  const finalBalance = await getBalance(db, t.userId);
  const [ledger] = await db.all<{ deducts: number | string; total: number | string | null }>(sql`
    SELECT SUM(CASE WHEN type = 'deduct' THEN 1 ELSE 0 END) AS deducts, SUM(amount) AS total
    FROM token_transactions WHERE user_id = ${t.userId}`);
  const deductRows = Number(ledger?.deducts ?? 0);
  const ledgerSum = Number(ledger?.total ?? 0);
  return [
    {
      name: "successes = min(n, floor(balance / amount))",
      ok: t.successes === expectedSuccesses,
      detail: `${t.successes} succeeded, expected ${expectedSuccesses}`,
    },
    {
      name: "final balance = balance − successes × amount ≥ 0",
      ok: finalBalance === expectedFinal && finalBalance >= 0,
      detail: `final ${finalBalance}, expected ${expectedFinal}`,
    },
    {
      name: "ledger holds exactly the successes and sums to the final balance",
      ok: deductRows === t.successes && deductRows === expectedSuccesses && ledgerSum === finalBalance,
      detail: `${deductRows} deduct rows for ${t.successes} successes; ledger sums to ${ledgerSum}, balance ${finalBalance}`,
    },
    {
      name: "no error other than insufficient balance",
      ok: t.errors.length === 0,
      detail: t.errors.length === 0 ? "none" : `${t.errors.length} errors, first: ${t.errors[0]}`,
    },
  ];
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
