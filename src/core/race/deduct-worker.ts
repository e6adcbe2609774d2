/**
 * One racer of `race-test`: a worker thread with its own connection, which waits at the start line
 * with the others, then fires its share of deductions back to back and reports what happened.
 */
import { workerData } from "node:worker_threads";
import { deductOnce, type RacerReport, type RacerTask } from "./deduct-racer.js";
import { runRacer } from "./worker-loop.js";

const task = workerData as RacerTask;
await runRacer(
  task,
  (db): RacerReport => ({ batched: db.ledger.submit !== undefined, successes: 0, rejected: 0, errors: [], latenciesMs: [] }),
  (db) => deductOnce(db, task, "warm-up"),
  async (db, report) => {
    const outcome = await deductOnce(db, task, "race");
    if (outcome === "ok") report.successes++;
    else if (outcome === "insufficient") report.rejected++;
    else report.errors.push(outcome.error);
  },
);
