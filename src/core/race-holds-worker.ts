/**
 * One racer of `race-test --mode holds`: a worker thread with its own connection, which waits at
 * the start line with the others, then fires its share of the operation mix back to back and
 * reports what happened.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openTarget } from "../db/open.js";
import { toBriefdbError } from "./failures.js";
import { getAvailableBalance } from "./holds.js";
import { emptyHoldsReport, holdsOperation, type HoldsRacerTask } from "./race-holds-racer.js";
import { Random } from "./test-data/prng.js";

const task = workerData as HoldsRacerTask;
const db = await openTarget(task.target, { ...task.openOptions, poolSize: 1 });
const report = emptyHoldsReport();
try {
  await getAvailableBalance(db, task.userId); // connect before the start, outside the timings
  const start = new Int32Array(task.startLine);
  Atomics.add(start, 1, 1);
  Atomics.wait(start, 0, 0);
  const random = new Random(task.seed);
  for (let i = 0; i < task.count; i++) {
    const begin = process.hrtime.bigint();
    await holdsOperation(db, task, random, report);
    report.latenciesMs.push(Number(process.hrtime.bigint() - begin) / 1e6);
  }
} catch (error) {
  const failure = toBriefdbError(error, db);
  report.errors.push(`${failure.code}: ${failure.message}`);
} finally {
  await db.close();
}
parentPort?.postMessage(report);
