// One client thread of the PostgreSQL deduct benchmark: `connections` deductions in flight on
// its own pool, for `seconds`; reports how many completed.
import { parentPort, workerData } from "node:worker_threads";
import { atomicTokenOperation, openDatabase } from "../dist/index.js";

const { url, connections, seconds, users, hot, seed } = workerData;
const db = await openDatabase(url, { poolSize: connections });
await atomicTokenOperation(db, "u0", "credit", 1, "warm-up");
let done = 0;
let next = seed * 7919;
const deadline = Date.now() + seconds * 1000;
async function loop() {
  while (Date.now() < deadline) {
    const user = hot ? "u0" : `u${(next = (next * 1103515245 + 12345) % 2147483648) % users}`;
    const result = await atomicTokenOperation(db, user, "deduct", 1, "bench");
    if (!result.success) throw result.error;
    done++;
  }
}
await Promise.all(Array.from({ length: connections }, loop));
await db.close();
parentPort.postMessage(done);
