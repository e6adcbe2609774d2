/**
 * One racer of `race-test --mode holds`: a worker thread with its own connection, which waits at
 * the start line with the others, then fires its share of the operation mix back to back and
 * reports what happened.
 */
import { workerData } from "node:worker_threads";
import { getAvailableBalance } from "../ledger/holds.js";
import { emptyHoldsReport, holdsOperation, type HoldsRacerTask } from "./holds-racer.js";
import { runRacer } from "./worker-loop.js";
import { Random } from "../prng.js";

const task = workerData as HoldsRacerTask;
const random = new Random(task.seed);
await runRacer(
  task,
  () => emptyHoldsReport(),
  (db) => getAvailableBalance(db, task.userId),
  (db, report) => holdsOperation(db, task, random, report),
);
