/**
 * race-test: n deductions fired truly in parallel (worker threads, each with its own connection)
 * at a throw-away user, then the ledger invariants checked. With the naive strategy the invariants
 * must break: that is how we know the test can catch a race.
 */
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { sql } from "drizzle-orm";
import type { BriefDatabase, OpenOptions } from "../db/database.js";
import { assertLocalTarget, isSharedTarget } from "../db/target.js";
import { BriefdbError } from "../errors.js";
import { PACKAGE_ROOT } from "../package-root.js";
import { newId } from "./ids.js";
import { raceOpeningBalance, type RaceMode, type RaceStrategy } from "./race-options.js";
import type { RacerReport, RacerTask } from "./race-racer.js";
import { elapsedMs, summarizePercentiles, type PercentileSummary } from "./stats.js";
import { getBalance } from "./tokens.js";
import { createUser, removeUser } from "./users.js";

// tsc's output, not the CLI bundle: a worker thread is its own program. Always the built file, even
// when this module is loaded from src/ (the tests): vitest's global setup builds before any test.
const RACE_WORKER = join(PACKAGE_ROOT, "dist", "core", "race-worker.js");

export interface RaceOptions {
  readonly n: number;
  readonly amount?: number;
  /** Opening balance of the throw-away user; default enough for half of the deductions. */
  readonly balance?: number;
  /** Parallel racers, each with its own connection; default min(n, 8). */
  readonly concurrency?: number;
  readonly strategy?: RaceStrategy;
  /** deducts (default) or holds: a mix of holds, captures, releases, expiries and deducts. */
  readonly mode?: RaceMode;
  /** Keep the throw-away user and its ledger afterwards. */
  readonly keep?: boolean;
  readonly allowRemote?: boolean;
  /** How racers open their connections (timeouts, prepared statements). */
  readonly openOptions?: OpenOptions;
}

export interface Invariant {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface RaceReport {
  readonly ok: boolean;
  readonly mode: RaceMode;
  readonly strategy: RaceStrategy;
  readonly userId: string;
  readonly kept: boolean;
  readonly n: number;
  readonly amount: number;
  readonly concurrency: number;
  readonly successes: number;
  readonly rejected: number;
  readonly errors: number;
  /** Up to ten of the unexpected errors, verbatim. */
  readonly errorSamples: readonly string[];
  readonly initialBalance: number;
  readonly finalBalance: number;
  readonly invariants: readonly Invariant[];
  readonly durationMs: number;
  readonly throughputPerSec: number;
  readonly latencyMs: PercentileSummary;
  /** deducts mode: whether the racers' databases batched token operations (false with --no-batch). */
  readonly batched?: boolean;
  /** holds mode: what each kind of operation did (ok, replayed, refused by code). */
  readonly operations?: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

export async function runRaceTest(db: BriefDatabase, options: RaceOptions): Promise<RaceReport> {
  const { n, amount = 1, strategy = "atomic" } = options;
  if (!options.allowRemote) assertLocalTarget(db.target, "race-test");
  if (!isSharedTarget(db.target)) {
    throw new BriefdbError("USAGE", "race-test needs a database that several connections share, not :memory:");
  }
  if (options.mode === "holds") {
    const { runHoldsRace } = await import("./race-holds.js");
    return runHoldsRace(db, options);
  }
  const initialBalance = raceOpeningBalance(n, amount, options.balance);
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 8, n));
  const userId = `race-${newId()}`;
  await createUser(db, { id: userId, email: `${userId}@race.briefdb.invalid`, name: "race-test user", openingBalance: initialBalance });
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
  return runRacers(RACE_WORKER, tasks, startLine, (error) => ({ batched: run.openOptions.batch ?? true, successes: 0, rejected: 0, errors: [error], latenciesMs: [] }));
}

/** n operations shared out over `concurrency` racers as evenly as whole numbers allow. */
export function raceShares(n: number, concurrency: number): number[] {
  return Array.from({ length: concurrency }, (_, i) => Math.floor(n / concurrency) + (i < n % concurrency ? 1 : 0));
}

/**
 * Starts one worker thread per task, waits until every racer stands at the start line (Int32 [1]
 * of `startLine` counts them) or one failed early, and not before `notBefore` (epoch ms), then
 * fires the start (Int32 [0]) and collects each racer's report; a crashed racer reports `crashed`.
 */
export async function runRacers<R>(
  script: string,
  tasks: readonly object[],
  startLine: SharedArrayBuffer,
  crashed: (error: string) => R,
  notBefore = 0,
): Promise<{ reports: R[]; startedAt: bigint }> {
  const flags = new Int32Array(startLine);
  const workers = tasks.map((task) => new Worker(script, { workerData: task }));
  const done = workers.map(
    (worker) =>
      new Promise<R>((resolve) => {
        worker.once("message", (report: R) => resolve(report));
        worker.once("error", (error) => resolve(crashed(`racer crashed: ${error.message}`)));
        worker.once("exit", (code) => resolve(crashed(`racer exited with code ${code}`)));
      }),
  );
  const settled = Promise.all(done);
  // wait for every racer to be connected and prepared, or for a racer to fail early
  while (Atomics.load(flags, 1) < workers.length || Date.now() < notBefore) {
    const early = await Promise.race([settled.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 5))]);
    if (early) break;
  }
  const startedAt = process.hrtime.bigint();
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  return { reports: await settled, startedAt };
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
