// Natural batching: in-process concurrent deducts through atomicTokenOperation with 10, 100 and
// 1,000 callers (each awaiting its deduct, then sending the next), spread over 1,000 users and on
// one hot user, batching on against batching off on the same database in the same run; on disk
// with synchronous=FULL (SQLite) and PostgreSQL's default durability. Beside them the
// one-statement baseline measured in this run: pgbench -M prepared (10 connections) on
// PostgreSQL; on SQLite batching off is one IMMEDIATE transaction per deduct (tokens-sqlite.mjs
// measures it at ~1× the raw better-sqlite3 loop).
// Targets: PostgreSQL spread at 1,000 callers ≥ 3× pgbench; SQLite spread at 1,000 callers ≥ 5×
// one transaction per deduct; p99 at 10 callers no worse than unbatched.
// BENCH_BATCH_SECONDS sets each measurement's length (default 3).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { atomicTokenOperation, openDatabase } from "briefdb";
import { createDatabase, startBenchPostgres } from "../harness/postgres.mjs";
import { PGBENCH, pgbench, setUp } from "./tokens-pg.mjs";

const USERS = 1000;
const SECONDS = Number(process.env.BENCH_BATCH_SECONDS ?? 3);
const CALLERS = [10, 100, 1000];
// BENCH_BATCH_ONLY=sqlite or postgresql measures one dialect
const ONLY = process.env.BENCH_BATCH_ONLY;

/**
 * `callers` loops of deducts for SECONDS on a database opened with `batch`.
 * @param {string} url
 * @param {boolean} batch
 * @param {number} callers
 * @param {boolean} hot
 */
async function measure(url, batch, callers, hot) {
  const db = await openDatabase(url, { batch, poolSize: 10 });
  try {
    /** @type {number[]} */
    const latencies = [];
    let failures = 0;
    const end = performance.now() + SECONDS * 1000;
    let seed = 1;
    const loop = async () => {
      while (performance.now() < end) {
        seed = (seed * 48271) % 2147483647;
        const user = hot ? "u0" : `u${seed % USERS}`;
        const started = performance.now();
        const result = await atomicTokenOperation(db, user, "deduct", 1, "bench");
        latencies.push(performance.now() - started);
        if (!result.success) failures += 1;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: callers }, loop));
    const elapsed = (performance.now() - started) / 1000;
    if (failures > 0) throw new Error(`${failures} deducts failed`);
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? Number.NaN;
    return { rate: latencies.length / elapsed, p99 };
  } finally {
    await db.close();
  }
}

/** @param {{ rate: number, p99: number }} m */
const show = (m) => `${Math.round(m.rate)} ops/s, p99 ${m.p99.toFixed(1)} ms`;

/**
 * @param {string} dialect
 * @param {string} url
 * @param {(hot: boolean) => Promise<number | undefined>} oneStatement the baseline's rate, if any
 * @returns {Promise<import("./report.mjs").BenchResult[]>}
 */
async function suite(dialect, url, oneStatement) {
  /** @type {import("./report.mjs").BenchResult[]} */
  const results = [];
  for (const hot of [false, true]) {
    const baseline = await oneStatement(hot);
    for (const callers of CALLERS) {
      const off = await measure(url, false, callers, hot);
      const on = await measure(url, true, callers, hot);
      const spread = hot ? "one hot user" : `spread over ${USERS} users`;
      const extra = [`p99 at ${callers} callers: batched ${on.p99.toFixed(1)} ms, unbatched ${off.p99.toFixed(1)} ms (${(on.p99 / off.p99).toFixed(2)}×)`];
      /** @type {import("./report.mjs").BenchCheck[]} */
      const checks = [];
      if (callers === 10) checks.push({ text: "p99 ≤ unbatched p99", met: on.p99 <= off.p99 });
      if (baseline !== undefined) {
        extra.push(`pgbench   ${Math.round(baseline)} tps (-M prepared, 10 connections): batched at ${(on.rate / baseline).toFixed(2)}× it`);
        if (!hot && callers === 1000) checks.push({ text: `batched ≥ 3× pgbench (${(on.rate / baseline).toFixed(2)}×)`, met: on.rate / baseline >= 3 });
      }
      results.push({
        name: `batched deduct, ${dialect}, ${callers} concurrent callers, ${spread}`,
        briefdb: `${show(on)} (batching on)`,
        baseline: `${show(off)} (batching off: one transaction per deduct)`,
        extra,
        ratio: on.rate / off.rate,
        ...(dialect === "SQLite" && !hot && callers === 1000 ? { target: 5 } : {}),
        ...(checks.length > 0 ? { checks } : {}),
      });
    }
  }
  return results;
}

/** @returns {Promise<import("./report.mjs").BenchResult[]>} */
export async function run() {
  /** @type {import("./report.mjs").BenchResult[]} */
  const results = [];
  const dir = mkdtempSync(join(tmpdir(), "briefdb-batching-"));
  if (ONLY !== "postgresql") try {
    const url = `file:${join(dir, "bench.db")}`;
    const { migrate } = await import("briefdb");
    const db = await openDatabase(url);
    await migrate(db);
    const now = Date.now();
    await db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${USERS - 1})
      INSERT INTO users (id, email, name, token_balance, created_at, updated_at)
      SELECT 'u' || i, 'u' || i || '@bench.test', 'u' || i, 1000000000000, ${now}, ${now} FROM n;
      INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at)
      SELECT 'open-' || id, id, 1000000000000, 'credit', 'opening balance', 1000000000000, ${now} FROM users`);
    await db.close();
    results.push(...(await suite("SQLite", url, async () => undefined)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (ONLY === "sqlite") return results;
  const server = await startBenchPostgres();
  try {
    const url = await createDatabase(server.url, "bench_batching");
    await setUp(url);
    results.push(...(await suite("PostgreSQL", url, async (hot) => (PGBENCH === undefined ? undefined : pgbench(url, hot, false)))));
  } finally {
    await server.stop();
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printResults } = await import("./report.mjs");
  printResults(await run());
}
