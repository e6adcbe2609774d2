// An app on briefdb's built library whose transaction or session loses its PostgreSQL backend
// (test/dead-connection.test.ts runs it as a child process: a crash must show as a dead process,
// not as a test runner's unhandled error). Prints one JSON line: what the app saw and what the
// database holds afterwards. Usage: node dead-connection-app.mjs <scenario> <url>
import { execFileSync } from "node:child_process";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { atomicTokenOperation, createUser, getBalance, migrate, openDatabase, withTransaction } from "../../dist/index.js";

const scenario = String(process.argv[2]);
const url = String(process.argv[3]);
const admin = postgres(url, { max: 1, onnotice: () => {} });
// briefdb's key as its JavaScript number holds it (0x62726965666462 rounded to a double)
const MIGRATION_LOCK_KEY = String(0x62726965666462);

/** A script that waits until the backend argv[2] (a pid) has gone from the server at argv[1]. */
const BACKEND_GONE = `
  import postgres from "postgres";
  const sql = postgres(process.argv[1], { max: 1, onnotice: () => {} });
  while ((await sql\`SELECT 1 FROM pg_stat_activity WHERE pid = \${Number(process.argv[2])}\`).length > 0) await new Promise((r) => setTimeout(r, 20));
  await sql.end();`;

/**
 * A promise and its resolve.
 * @template T
 * @returns {{ promise: Promise<T>, resolve: (value: T) => void }}
 */
function signal() {
  /** @type {(value: T) => void} */
  let resolve = () => {};
  /** @type {Promise<T>} */
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** @param {any} error */
const codeOf = (error) => error?.code ?? error?.cause?.code ?? `${error?.name}: ${error?.cause?.message ?? error?.message}`;
/** @param {Promise<unknown>} promise @returns {Promise<string>} */
const settled = (promise) =>
  promise.then(
    (/** @type {any} */ value) => (value && typeof value === "object" && "success" in value ? (value.success ? "ok" : value.error.code) : "ok"),
    (/** @type {unknown} */ error) => `threw ${codeOf(error)}`,
  );

/** @param {string} user */
async function ledgerRows(user) {
  const [row] = await admin`SELECT count(*)::int AS n FROM token_transactions WHERE user_id = ${user}`;
  return Number(row?.n);
}

/**
 * @template T
 * @param {() => T | false | undefined | Promise<T | false | undefined>} check
 * @returns {Promise<T>}
 */
async function waitFor(check) {
  for (;;) {
    const found = await check();
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * withTransaction whose backend dies while the operation waits between statements (terminated,
 * or idle in transaction too long); `reconnect`: another query on the pool of one connection
 * brings that connection back first. Then the operation goes on with a deduct in the transaction.
 */
/** @param {{ death: "terminate" | "idle-timeout", reconnect: boolean }} how */
async function deadTransaction({ death, reconnect }) {
  const db = await openDatabase(url, { poolSize: 1, batch: false });
  const user = `dead-${process.pid}`;
  await createUser(db, { id: user, email: `${user}@example.test`, name: user, openingBalance: 100 });
  /** @type {{ promise: Promise<number>, resolve: (pid: number) => void }} */
  const started = signal();
  /** @type {{ promise: Promise<void>, resolve: (value: void) => void }} */
  const goOn = signal();
  /** @type {Promise<unknown> | undefined} */
  let deduct;
  const transaction = withTransaction(
    db,
    async (tx) => {
      if (death === "idle-timeout") await tx.exec("SET LOCAL idle_in_transaction_session_timeout = '50ms'");
      const [row] = await tx.all(sql`SELECT pg_backend_pid() AS pid`);
      started.resolve(Number(row?.pid));
      await goOn.promise;
      deduct = atomicTokenOperation(db, user, "deduct", 10, "after the backend died", { transaction: tx });
      return deduct;
    },
    { retries: 0 },
  );
  const pid = await started.promise;
  if (death === "terminate") await admin`SELECT pg_terminate_backend(${pid})`;
  const outcome = await settled(transaction);
  if (reconnect) await db.all(sql`SELECT 1`);
  goOn.resolve();
  const { sent } = await waitFor(() => deduct && { sent: deduct });
  const deducted = await settled(sent);
  // anything the driver still had to write has been written by now
  await new Promise((resolve) => setTimeout(resolve, 200));
  const result = { transaction: outcome, deduct: deducted, balance: await getBalance(db, user), ledgerRows: await ledgerRows(user) };
  await db.close();
  return result;
}

/**
 * withTransaction ended by idle_in_transaction_session_timeout while the app's event loop was busy
 * (the server's FATAL waits unread, and the operation's next statement is written after it): the
 * transaction fails as a lost connection, and postgres.js hands that same FATAL again to the first
 * call on the connection made again (it keeps it past the close), here a standalone deduct that
 * was never sent.
 */
async function idleTimeoutUnread() {
  const db = await openDatabase(url, { poolSize: 1, batch: false });
  const user = `unread-${process.pid}`;
  await createUser(db, { id: user, email: `${user}@example.test`, name: user, openingBalance: 100 });
  const transaction = withTransaction(
    db,
    async (tx) => {
      await tx.exec("SET LOCAL idle_in_transaction_session_timeout = '50ms'");
      const [row] = await tx.all(sql`SELECT pg_backend_pid() AS pid`);
      // the event loop blocked (a child process waits) until the server has ended the backend:
      // its FATAL is not read yet when the next statement is written
      execFileSync(process.execPath, ["--input-type=module", "-e", BACKEND_GONE, url, String(row?.pid)], { cwd: import.meta.dirname });
      return atomicTokenOperation(db, user, "deduct", 5, "in the dead transaction", { transaction: tx });
    },
    { retries: 0 },
  );
  const outcome = await settled(transaction);
  const next = await settled(atomicTokenOperation(db, user, "deduct", 1, "next on the pool"));
  const after = await settled(atomicTokenOperation(db, user, "deduct", 1, "after"));
  const result = { transaction: outcome, next, after, balance: await getBalance(db, user), ledgerRows: await ledgerRows(user) };
  await db.close();
  return result;
}

/** withTransaction whose statement in flight loses its backend; the operation lets the failure through. */
async function cutInFlight() {
  const db = await openDatabase(url, { poolSize: 1, batch: false });
  const transaction = withTransaction(db, async (tx) => tx.all(sql`SELECT pg_sleep(30), 'cut in flight'`), { retries: 0 });
  const [found] = await waitFor(() => admin`SELECT pid FROM pg_stat_activity WHERE query LIKE '%cut in flight%' AND state = 'active' AND pid <> pg_backend_pid()`.then((r) => r.length > 0 && r));
  const pid = found?.pid;
  await admin`SELECT pg_terminate_backend(${pid})`;
  const outcome = await settled(transaction);
  await new Promise((resolve) => setTimeout(resolve, 200));
  // postgres.js keeps the killed statement's FATAL error and gives it to the first query on the
  // connection made again (noticed, not briefdb's to fix): the next one is served
  const first = await settled(db.all(sql`SELECT 1`));
  const after = await settled(db.all(sql`SELECT 1`));
  await db.close();
  return { transaction: outcome, first, after };
}

/** A pipelined deduct batch (a key repeated inside it) whose connection is cut while it waits for a row lock. */
async function batchCut() {
  const db = await openDatabase(url, { poolSize: 2 });
  const user = `batch-${process.pid}`;
  await createUser(db, { id: user, email: `${user}@example.test`, name: user, openingBalance: 100 });
  const locker = postgres(url, { max: 1, onnotice: () => {} });
  const reserved = await locker.reserve();
  await reserved.unsafe("BEGIN");
  await reserved`SELECT 1 FROM users WHERE id = ${user} FOR UPDATE`;
  /** @param {number} amount @param {string} [key] */
  const deduct = (amount, key) => atomicTokenOperation(db, user, "deduct", amount, "batch", key ? { idempotencyKey: key } : {});
  const all = Promise.all([deduct(1, `${user}-k`), deduct(1, `${user}-k`), deduct(2), deduct(3)].map(settled));
  const [found] = await waitFor(() =>
    admin`SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%WITH prior AS%'`.then((r) => r.length > 0 && r),
  );
  const pid = found?.pid;
  await admin`SELECT pg_terminate_backend(${pid})`;
  await reserved.unsafe("COMMIT");
  reserved.release();
  const outcomes = await all;
  await new Promise((resolve) => setTimeout(resolve, 200));
  const result = { outcomes, balance: await getBalance(db, user), ledgerRows: await ledgerRows(user) };
  await locker.end();
  await db.close();
  return result;
}

/** migrate on the app's own pool (a reserved connection) whose backend dies while it waits for the migration lock. */
async function reservedSession() {
  const app = postgres(url, { max: 2, onnotice: () => {} });
  const db = await openDatabase(app);
  const holder = postgres(url, { max: 1, onnotice: () => {} });
  await holder.unsafe(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
  const migrating = settled(migrate(db));
  const [found] = await waitFor(() =>
    admin`SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_try_advisory_lock%' AND pid <> pg_backend_pid()`.then((r) => r.length > 0 && r),
  );
  const pid = found?.pid;
  await admin`SELECT pg_terminate_backend(${pid})`;
  await holder.end();
  const outcome = await migrating;
  await new Promise((resolve) => setTimeout(resolve, 200));
  const after = await settled(db.all(sql`SELECT 1`));
  await db.close();
  await app.end();
  return { migrate: outcome, after };
}

const scenarios = {
  "terminated-idle": () => deadTransaction({ death: "terminate", reconnect: false }),
  "terminated-idle-reconnected": () => deadTransaction({ death: "terminate", reconnect: true }),
  "idle-timeout": () => deadTransaction({ death: "idle-timeout", reconnect: false }),
  "idle-timeout-reconnected": () => deadTransaction({ death: "idle-timeout", reconnect: true }),
  "idle-timeout-unread": idleTimeoutUnread,
  "cut-in-flight": cutInFlight,
  "batch-cut": batchCut,
  "reserved-session": reservedSession,
};

const result = await scenarios[/** @type {keyof typeof scenarios} */ (scenario)]();
await admin.end();
process.stdout.write(`${JSON.stringify(result)}\n`);
