/**
 * One racer of `race-test`: a worker thread with its own connection, which waits at the start line
 * with the others, then fires its share of deductions back to back and reports what happened.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openTarget } from "../db/open.js";
import { toBriefdbError } from "./failures.js";
import { deductOnce, type RacerReport, type RacerTask } from "./race-racer.js";

const task = workerData as RacerTask;
const db = await openTarget(task.target, { ...task.openOptions, poolSize: 1 });
const report: RacerReport = { batched: db.ledger.submit !== undefined, successes: 0, rejected: 0, errors: [], latenciesMs: [] };
try {
  await deductOnce(db, task, "warm-up"); // connect and prepare before the start, outside the timings
  const start = new Int32Array(task.startLine);
  Atomics.add(start, 1, 1);
  Atomics.wait(start, 0, 0);
  for (let i = 0; i < task.count; i++) {
    const begin = process.hrtime.bigint();
    const outcome = await deductOnce(db, task, "race");
    report.latenciesMs.push(Number(process.hrtime.bigint() - begin) / 1e6);
    if (outcome === "ok") report.successes++;
    else if (outcome === "insufficient") report.rejected++;
    else report.errors.push(outcome.error);
  }
} catch (error) {
  const failure = toBriefdbError(error, db);
  report.errors.push(`${failure.code}: ${failure.message}`);
} finally {
  await db.close();
}
parentPort?.postMessage(report);
