/**
 * What every racer's worker thread does around its operations: one connection of its own, a
 * warm-up outside the timings, the wait at the shared start line, `count` timed operations back
 * to back, and the report posted to the parent (a failure that ends the racer is one of its errors).
 */
import { parentPort } from "node:worker_threads";
import type { BriefDatabase, OpenOptions } from "../../db/database.js";
import { openTarget } from "../../db/open.js";
import type { Target } from "../../db/target.js";
import { toBriefdbError } from "../failures.js";

export interface RacerLoopTask {
  readonly target: Target;
  readonly openOptions: OpenOptions;
  readonly count: number;
  /** Int32 [0]: 0 until the start, [1]: racers ready. */
  readonly startLine: SharedArrayBuffer;
}

export async function runRacer<R extends { errors: string[]; latenciesMs: number[] }>(
  task: RacerLoopTask,
  makeReport: (db: BriefDatabase) => R,
  warmUp: (db: BriefDatabase) => Promise<unknown>,
  operation: (db: BriefDatabase, report: R) => Promise<void>,
): Promise<void> {
  const db = await openTarget(task.target, { ...task.openOptions, poolSize: 1 });
  const report = makeReport(db);
  try {
    await warmUp(db); // connect and prepare before the start, outside the timings
    const start = new Int32Array(task.startLine);
    Atomics.add(start, 1, 1);
    Atomics.wait(start, 0, 0);
    for (let i = 0; i < task.count; i++) {
      const begin = process.hrtime.bigint();
      await operation(db, report);
      report.latenciesMs.push(Number(process.hrtime.bigint() - begin) / 1e6);
    }
  } catch (error) {
    const failure = toBriefdbError(error, db);
    report.errors.push(`${failure.code}: ${failure.message}`);
  } finally {
    await db.close();
  }
  parentPort?.postMessage(report);
}
