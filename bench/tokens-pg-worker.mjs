// One client thread of the PostgreSQL deduct benchmark: `connections` deductions in flight on its
// own pool, for `seconds`; reports how many completed. `driver: "raw"` sends the same statement
// straight through postgres.js, to show what the driver alone costs beside briefdb. `driver: "holds"`
// runs hold + capture pairs (holdTokens, then captureHold of part of it) and counts pairs.
import { randomUUID } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import postgres from "postgres";
import { atomicTokenOperation, captureHold, holdTokens, openDatabase, parseTarget } from "briefdb";
import { PG_DEDUCT_STATEMENT } from "briefdb/internal/bench";

/** @type {{ url: string, connections: number, seconds: number, users: number, hot: boolean, seed: number, driver: "briefdb" | "raw" | "holds" }} */
const { url, connections, seconds, users, hot, seed, driver } = workerData;
if (parentPort === null) throw new Error("tokens-pg-worker.mjs runs as a worker thread of tokens-pg.mjs");
const parent = parentPort;
/** @type {(user: string) => Promise<unknown>} */
let deduct;
/** @type {() => Promise<void>} */
let close;
if (driver === "raw") {
  const t = parseTarget(url); // briefdb's URL reading, so that socket URLs work here too
  if (t.dialect !== "postgresql") throw new Error(`not a PostgreSQL URL: ${url}`);
  const sql = postgres({
    host: t.socketDir ?? t.host,
    port: t.port,
    path: t.socketDir === undefined ? undefined : `${t.socketDir}/.s.PGSQL.${t.port}`,
    database: t.database,
    user: t.user,
    password: t.password,
    max: connections,
    fetch_types: false,
    onnotice: () => {},
  });
  deduct = (user) => sql.unsafe(PG_DEDUCT_STATEMENT, [randomUUID(), user, 1, "bench", null, null], { prepare: true });
  close = () => sql.end();
} else if (driver === "holds") {
  const db = await openDatabase(url, { poolSize: connections });
  deduct = async (user) => {
    const held = await holdTokens(db, user, 10, "bench");
    if (!held.success) throw held.error;
    const captured = await captureHold(db, held.data.holdId, 7);
    if (!captured.success) throw captured.error;
  };
  close = () => db.close();
} else {
  const db = await openDatabase(url, { poolSize: connections });
  deduct = async (user) => {
    const result = await atomicTokenOperation(db, user, "deduct", 1, "bench");
    if (!result.success) throw result.error;
  };
  close = () => db.close();
}
await deduct("u0"); // connect and prepare before the clock starts
let done = 0;
let next = seed * 7919;
const deadline = Date.now() + seconds * 1000;
async function loop() {
  while (Date.now() < deadline) {
    await deduct(hot ? "u0" : `u${(next = (next * 1103515245 + 12345) % 2147483648) % users}`);
    done++;
  }
}
await Promise.all(Array.from({ length: connections }, loop));
await close();
parent.postMessage(done);
