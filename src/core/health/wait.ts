/**
 * Waiting for a healthy database, for a CI job whose database starts beside it: the health check
 * retried until it passes or the deadline comes, with each change of state reported (unreachable →
 * not migrated → healthy) through a callback, never printed here.
 */
import type { BriefDatabase } from "../../db/database.js";
import { BriefdbError, isBriefdbError } from "../../errors.js";
import { sleep } from "../../retry.js";
import { checkDatabaseHealth, type HealthReport } from "./health.js";
import type { RoleRequirement } from "./replication.js";

export interface WaitOptions {
  /** How long to keep trying, in ms. */
  readonly timeoutMs: number;
  readonly samples?: number;
  /** Check integrity too, as `health --deep` does. */
  readonly deep?: boolean;
  /** The role the server must have, as `health --require` (a failover: wait for the new primary). */
  readonly require?: RoleRequirement;
  /** Pause between attempts; default 500 ms. */
  readonly intervalMs?: number;
  /** Called once per change of state, with a short description of it. */
  readonly onState?: (state: string) => void;
  /** Stops waiting (CANCELLED, naming the last state), even in the middle of an attempt. */
  readonly signal?: AbortSignal;
}

export interface WaitResult {
  /** The last check's report; undefined when the database could never even be opened. */
  readonly report: HealthReport | undefined;
  /** Why it could not be opened, when it never could. */
  readonly openError: BriefdbError | undefined;
  readonly attempts: number;
  readonly waitedMs: number;
}

/** `open` is retried too: a SQLite file may not exist yet. */
export async function waitForHealth(open: () => Promise<BriefDatabase>, options: WaitOptions): Promise<WaitResult> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let db: BriefDatabase | undefined;
  let last = "";
  let attempts = 0;
  for (;;) {
    attempts++;
    let report: HealthReport | undefined;
    let openError: BriefdbError | undefined;
    try {
      report = await unlessAborted(options.signal, last, async () => {
        db ??= await open();
        return checkDatabaseHealth(db, { samples: options.samples ?? 1, deep: options.deep === true, ...(options.require === undefined ? {} : { require: options.require }) });
      });
    } catch (error) {
      if (!isBriefdbError(error) || error.code === "CANCELLED") throw error;
      openError = error;
    }
    const state = stateOf(report, openError);
    if (state !== last) options.onState?.(state);
    last = state;
    const done = report?.healthy === true || Date.now() + (options.intervalMs ?? 500) > deadline;
    if (done) return { report, openError, attempts, waitedMs: Date.now() - started };
    await unlessAborted(options.signal, last, () => sleep(options.intervalMs ?? 500));
  }
}

/** `work`, unless the signal stops the wait first: then CANCELLED with the last state seen. */
function unlessAborted<T>(signal: AbortSignal | undefined, last: string, work: () => Promise<T>): Promise<T> {
  const cancelled = () => new BriefdbError("CANCELLED", `health --wait interrupted${last === "" ? "" : `; last state: ${last}`}`);
  if (signal === undefined) return work();
  if (signal.aborted) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(cancelled());
    signal.addEventListener("abort", stop, { once: true });
    work().then(resolve, reject).finally(() => signal.removeEventListener("abort", stop));
  });
}

function stateOf(report: HealthReport | undefined, openError: BriefdbError | undefined): string {
  if (report === undefined) return `unreachable: ${openError?.message ?? "cannot open"}`;
  if (report.healthy) return "healthy";
  if (report.error) return `unreachable: ${report.error.message}`;
  return `unhealthy: ${report.problems.join("; ")}`;
}
