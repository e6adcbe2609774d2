// Performance target (docs/performance.md): deduct on PostgreSQL with 10 connections, spread over 1000 users and on one hot user —
// briefdb's atomicTokenOperation against `pgbench -M prepared` running the same statement against
// the same server, measured in this one run. Target: ratio ≥ 0.8.
// Beside it, same run: briefdb's hold + capture pairs against pgbench running briefdb's own hold
// and capture statements as a pair. Target: ratio ≥ 0.8.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { migrate, openDatabase } from "briefdb";
import { PG_CAPTURE_STATEMENT, PG_DEDUCT_STATEMENT, PG_HOLD_STATEMENT } from "briefdb/internal/bench";
import { createDatabase, startBenchPostgres } from "../harness/postgres.mjs";

const USERS = 1000;
const CONNECTIONS = 10;
// One client thread on each side: pgbench's default (-j 1), and briefdb's one Node.js thread with a
// pool of 10 (two threads of 5 measured slower on 2 cores, where the client shares the CPU with
// the server). BENCH_PGBENCH_THREADS and BENCH_CLIENT_THREADS change them.
const THREADS = Number(process.env.BENCH_PGBENCH_THREADS ?? 1);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = 2;
export const PGBENCH = [
  ...(existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort().reverse() : []).map((v) => `/usr/lib/postgresql/${v}/bin/pgbench`),
  "/usr/bin/pgbench",
].find(existsSync);

/**
 * `statement` with its parameters ($1, $2, …) replaced by the pgbench expressions of `values`.
 * @param {string} statement
 * @param {Record<string, string>} values
 */
function substitute(statement, values) {
  return statement.replace(/\$(\d)/g, (_, n) => {
    const value = values[n];
    if (value === undefined) throw new Error(`a statement has a parameter $${n} this bench does not know`);
    return value;
  });
}

/**
 * The pgbench script: the statements briefdb runs, their parameters as pgbench expressions, the
 * user `userExpr`. "deduct": the deduct ($1 id, $2 user, $3 amount, $4 reason, $5 brief, $6 key).
 * "pair": the hold ($1 id, $2 user, $3 amount, $4 reason, $5 brief, $6 key, $7 TTL) whose id
 * \gset keeps, then the capture of 7 of its 10 ($1 hold, $2 amount, $3 ledger id): one pgbench
 * transaction is one pair, each statement its own transaction, as briefdb runs them.
 * @param {string} userExpr
 * @param {"deduct" | "pair"} kind
 */
function script(userExpr, kind) {
  const header = `\\set uid random(0, ${USERS - 1})\n`;
  if (kind === "deduct") {
    return `${header}${substitute(PG_DEDUCT_STATEMENT, { 1: "gen_random_uuid()::text", 2: userExpr, 3: "1", 4: "'bench'", 5: "NULL", 6: "NULL" })};\n`;
  }
  const hold = substitute(PG_HOLD_STATEMENT, { 1: "'hold_' || gen_random_uuid()::text", 2: userExpr, 3: "10", 4: "'bench'", 5: "NULL", 6: "NULL", 7: "900" });
  const capture = substitute(PG_CAPTURE_STATEMENT, { 1: ":p_id", 2: "7", 3: "gen_random_uuid()::text" });
  return `${header}${hold}\n\\gset p_\n${capture};\n`;
}

/** @param {string} url */
export async function setUp(url) {
  const db = await openDatabase(url);
  await migrate(db);
  await db.exec(`
    INSERT INTO users (id, email, name, token_balance)
      SELECT 'u' || i, 'u' || i || '@bench.test', 'u' || i, 1000000000000 FROM generate_series(0, ${USERS - 1}) i;
    INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after)
      SELECT gen_random_uuid()::text, 'u' || i, 1000000000000, 'credit', 'opening balance', 1000000000000 FROM generate_series(0, ${USERS - 1}) i;
    ANALYZE;`);
  await db.close();
}

/** @param {string} url */
async function analyze(url) {
  const db = await openDatabase(url);
  await db.exec("ANALYZE");
  await db.close();
}

/**
 * pgbench's connection flags for the database at the TCP `url`, or at its server's socket in /tmp.
 * @param {string} url
 * @param {boolean} socket
 */
function connectionOf(url, socket) {
  const u = new URL(url);
  return {
    args: ["-h", socket ? "/tmp" : u.hostname, "-p", u.port || "5432", "-U", decodeURIComponent(u.username) || "postgres", u.pathname.slice(1)],
    password: decodeURIComponent(u.password),
  };
}

/**
 * The same database reached through the server's Unix socket in /tmp (see harness/postgres.mjs).
 * @param {string} url
 */
function overSocket(url) {
  const u = new URL(url);
  return `postgres://${u.username}:${u.password}@${u.pathname}?host=/tmp&port=${u.port}`;
}

/**
 * @param {string} url
 * @param {boolean} hot
 * @param {boolean} socket
 * @param {"deduct" | "pair"} kind
 */
export function pgbench(url, hot, socket, kind = /** @type {"deduct" | "pair"} */ ("deduct")) {
  if (PGBENCH === undefined) throw new Error("pgbench not found");
  const dir = mkdtempSync(join(tmpdir(), "briefdb-pgbench-"));
  const file = join(dir, "deduct.sql");
  writeFileSync(file, script(hot ? "'u0'" : "'u' || :uid", kind));
  const out = execFileSync(
    PGBENCH,
    ["-n", "-M", "prepared", "-c", String(CONNECTIONS), "-j", String(THREADS), "-T", String(SECONDS), "-f", file, ...connectionOf(url, socket).args],
    { encoding: "utf8", env: { ...process.env, PGPASSWORD: connectionOf(url, socket).password } },
  );
  rmSync(dir, { recursive: true, force: true });
  const tps = /tps = ([\d.]+)/.exec(out);
  if (!tps) throw new Error(`pgbench printed no tps:\n${out}`);
  return Number(tps[1]);
}

/**
 * Deductions per second over `seconds`, through briefdb or (driver "raw") the same statement
 * straight through postgres.js; driver "holds": hold + capture pairs per second through briefdb.
 * See tokens-pg-worker.mjs.
 * @param {string} url
 * @param {boolean} hot
 * @param {"briefdb" | "raw" | "holds"} driver
 * @returns {Promise<number>}
 */
async function briefdb(url, hot, seconds = SECONDS, driver = /** @type {"briefdb" | "raw" | "holds"} */ ("briefdb")) {
  const threads = Number(process.env.BENCH_CLIENT_THREADS ?? 1);
  const workers = Array.from({ length: threads }, (_, i) =>
    new Worker(new URL("./tokens-pg-worker.mjs", import.meta.url), {
      workerData: { url, connections: CONNECTIONS / threads, seconds, users: USERS, hot, seed: i + 1, driver },
    }),
  );
  const counts = await Promise.all(workers.map((w) => new Promise(/** @param {(done: number) => void} resolve */ (resolve, reject) => {
    w.once("message", resolve);
    w.once("error", reject);
  })));
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

/** @returns {Promise<import("./report.mjs").BenchResult[]>} */
export async function run() {
  if (!PGBENCH) return [{ name: "deduct, PostgreSQL", briefdb: "-", baseline: "pgbench not found", ratio: Number.NaN }];
  const server = await startBenchPostgres();
  /** @type {import("./report.mjs").BenchResult[]} */
  const results = [];
  try {
    // TCP on loopback as in production, and the Unix socket of a server on the same machine
    // (less kernel work per round trip for both clients) when the server has one (not external)
    const transports = process.env.BRIEFDB_BENCH_PG_URL ? ["tcp"] : ["tcp", "unix socket"];
    for (const transport of transports) {
      for (const hot of [false, true]) {
        const name = `bench_${hot ? "hot" : "spread"}_${transport === "tcp" ? "tcp" : "socket"}`;
        const tcpUrl = await createDatabase(server.url, name);
        const url = transport === "tcp" ? tcpUrl : overSocket(tcpUrl);
        await setUp(url);
        await briefdb(url, hot, 1); // warm the server, the table and its indexes for both sides
        await briefdb(url, hot, 1, "holds");
        // as autovacuum's ANALYZE leaves a live database: the statistics of a token_holds table that
        // was empty at set-up would keep its plans (the foreign-key check of each capture among them)
        // on a sequential scan while it grows by thousands of rows a second
        await analyze(url);
        // alternate the sides so that a noisy neighbour hurts all alike; keep each side's best round
        const base = [];
        const ours = [];
        const driverOnly = [];
        const pairs = [];
        const basePairs = [];
        for (let round = 0; round < ROUNDS; round++) {
          base.push(pgbench(tcpUrl, hot, transport !== "tcp"));
          ours.push(await briefdb(url, hot));
          driverOnly.push(await briefdb(url, hot, SECONDS, "raw"));
          pairs.push(await briefdb(url, hot, SECONDS, "holds"));
          basePairs.push(pgbench(tcpUrl, hot, transport !== "tcp", "pair"));
        }
        results.push({
          name: `deduct, PostgreSQL over ${transport}, ${CONNECTIONS} connections, ${hot ? "one hot user" : `spread over ${USERS} users`}`,
          briefdb: `${Math.round(Math.max(...ours))} ops/s`,
          baseline: `${Math.round(Math.max(...base))} tps (pgbench -M prepared, same statement, same server)`,
          extra: [
            `driver    ${Math.round(Math.max(...driverOnly))} ops/s (the same statement straight through postgres.js): briefdb at ${(Math.max(...ours) / Math.max(...driverOnly)).toFixed(2)}× its driver`,
          ],
          ratio: Math.max(...ours) / Math.max(...base),
          target: 0.8,
        });
        results.push({
          name: `hold + capture pair, PostgreSQL over ${transport}, ${CONNECTIONS} connections, ${hot ? "one hot user" : `spread over ${USERS} users`}`,
          briefdb: `${Math.round(Math.max(...pairs))} pairs/s`,
          baseline: `${Math.round(Math.max(...basePairs))} pairs/s (pgbench -M prepared, briefdb's hold and capture statements, same server)`,
          extra: [
            `beside it: a pgbench pair costs ${(Math.max(...base) / Math.max(...basePairs)).toFixed(2)} pgbench deducts; briefdb's pair is ${(Math.max(...pairs) / Math.max(...ours)).toFixed(2)}× briefdb's own deduct rate`,
          ],
          ratio: Math.max(...pairs) / Math.max(...basePairs),
          target: 0.8,
        });
      }
    }
  } finally {
    await server.stop();
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printResults } = await import("./report.mjs");
  printResults(await run());
}
