/**
 * What both races share: their options and report, the worker files they start, and the start
 * line — one worker thread per racer, fired together once every racer is connected.
 */
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { BriefDatabase, OpenOptions } from "../../db/database.js";
import { newId } from "../ids.js";
import { createUser } from "../ledger/users.js";
import { PACKAGE_ROOT } from "../../package-root.js";
import type { LatencyBucket, PercentileSummary } from "../stats.js";
import { raceOpeningBalance, type RaceMode, type RaceStrategy } from "./options.js";

/** The racers' programs, each a file beside this one (test/race-workers.test.ts checks both exist, in src/ and built). */
export const RACE_WORKERS = ["deduct-worker", "holds-worker"] as const;
export type RaceWorker = (typeof RACE_WORKERS)[number];

/**
 * A worker thread is its own program, so it runs tsc's output of this folder, never the CLI
 * bundle's chunks, and the built file even when this module is loaded from src/ (the tests:
 * vitest's global setup builds before any test).
 */
export const RACE_WORKER_FOLDER = ["core", "race"] as const;

export function raceWorkerFile(worker: RaceWorker): string {
  return join(PACKAGE_ROOT, "dist", ...RACE_WORKER_FOLDER, `${worker}.js`);
}

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
  /** How the operations' latencies spread (the empty buckets at either end left out). */
  readonly latencyHistogram: readonly LatencyBucket[];
  /** deducts mode: whether the racers' databases batched token operations (false with --no-batch). */
  readonly batched?: boolean;
  /** holds mode: what each kind of operation did (ok, replayed, refused by code). */
  readonly operations?: Readonly<Record<string, Readonly<Record<string, number>>>>;
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

/** What a race works with, its options read once: the throw-away user it races is made here, with the opening balance. */
export async function startRace(db: BriefDatabase, options: RaceOptions) {
  const { n, amount = 1, strategy = "atomic" } = options;
  const initialBalance = raceOpeningBalance(n, amount, options.balance);
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 8, n));
  const userId = `race-${newId()}`;
  await createUser(db, { id: userId, email: `${userId}@race.briefdb.invalid`, name: "race-test user", openingBalance: initialBalance });
  return { n, amount, strategy, initialBalance, concurrency, userId };
}
