// Performance target (docs/performance.md): deduct on SQLite, in-process — briefdb's atomicTokenOperation against a raw
// better-sqlite3 loop doing the same UPDATE … RETURNING + ledger INSERT per IMMEDIATE transaction,
// with the same pragmas, measured in this one run. Target: ratio ≥ 0.8.
// Beside it, same run: hold + capture pairs (holdTokens, then captureHold of part of it) against a
// hand-written better-sqlite3 pair doing the same writes. Target: ratio ≥ 0.8.
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { atomicTokenOperation, captureHold, holdTokens, migrate, openDatabase } from "briefdb";

const USERS = 1000;
const OPS = Number(process.env.BENCH_OPS ?? 20_000);
const ROUNDS = 4;

/**
 * @param {string} dir
 * @param {string} name
 */
async function prepareFile(dir, name) {
  const path = join(dir, name);
  const db = await openDatabase(`file:${path}`);
  await migrate(db);
  await db.close();
  const raw = new Database(path);
  const now = Date.now();
  const insertUser = raw.prepare(
    "INSERT INTO users (id, email, name, token_balance, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
  );
  const insertCredit = raw.prepare(
    "INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at) VALUES (?, ?, ?, 'credit', 'opening balance', ?, ?)",
  );
  raw.transaction(() => {
    for (let i = 0; i < USERS; i++) {
      insertUser.run(`u${i}`, `u${i}@bench.test`, `u${i}`, 1e12, now, now);
      insertCredit.run(randomUUID(), `u${i}`, 1e12, 1e12, now);
    }
  })();
  raw.close();
  return path;
}

/**
 * The file opened by hand as briefdb opens it (WAL, foreign keys, a busy timeout).
 * @param {string} path
 * @param {"FULL" | "NORMAL"} synchronous
 */
function openRaw(path, synchronous) {
  const db = new Database(path, { timeout: 15000 });
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 15000");
  return db;
}

/**
 * The baseline: what a careful hand-written better-sqlite3 program does.
 * @param {string} path
 * @param {"FULL" | "NORMAL"} synchronous
 */
function rawLoop(path, synchronous) {
  const db = openRaw(path, synchronous);
  /** @type {import("better-sqlite3").Statement<[number, number, string, number], { token_balance: number }>} */
  const update = db.prepare(
    "UPDATE users SET token_balance = token_balance - ?, updated_at = ? WHERE id = ? AND token_balance >= ? RETURNING token_balance",
  );
  const insert = db.prepare(
    "INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, created_at) VALUES (?, ?, ?, 'deduct', ?, NULL, ?, NULL, ?)",
  );
  const deduct = db.transaction((/** @type {string} */ userId, /** @type {number} */ amount) => {
    const now = Date.now();
    const row = update.get(amount, now, userId, amount);
    if (row === undefined) return undefined;
    insert.run(randomUUID(), userId, -amount, "bench", row.token_balance, now);
    return row.token_balance;
  });
  const start = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) deduct.immediate(`u${i % USERS}`, 1);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  db.close();
  return OPS / seconds;
}

/**
 * The floor under a hold + capture pair: the same writes as briefdb's (src/db/sqlite/holds.ts),
 * hand-written against better-sqlite3 as rawLoop is — hold: reserve on the user row, insert the
 * hold; capture: settle the hold row, charge the user row, insert the ledger row naming the hold;
 * each an IMMEDIATE transaction of its own (the work whose cost is unknown runs between them).
 * Pairs per second.
 * @param {string} path
 * @param {"FULL" | "NORMAL"} synchronous
 */
function rawPairLoop(path, synchronous) {
  const db = openRaw(path, synchronous);
  /** @type {import("better-sqlite3").Statement<[number, number, string, number], { token_balance: number }>} */
  const reserve = db.prepare(
    "UPDATE users SET held_tokens = held_tokens + ?, updated_at = ? WHERE id = ? AND token_balance - held_tokens >= ? RETURNING token_balance",
  );
  const insertHold = db.prepare(
    "INSERT INTO token_holds (id, user_id, amount, status, reason, brief_id, idempotency_key, expires_at, created_at) VALUES (?, ?, ?, 'active', ?, NULL, NULL, ?, ?)",
  );
  /** @type {import("better-sqlite3").Statement<[number, number, string, number, number], { user_id: string, amount: number, reason: string }>} */
  const settle = db.prepare(
    "UPDATE token_holds SET status = 'captured', captured_amount = ?, settled_at = ? WHERE id = ? AND status = 'active' AND expires_at > ? AND amount >= ? RETURNING user_id, amount, reason",
  );
  /** @type {import("better-sqlite3").Statement<[number, number, number, string], { token_balance: number }>} */
  const charge = db.prepare("UPDATE users SET token_balance = token_balance - ?, held_tokens = held_tokens - ?, updated_at = ? WHERE id = ? RETURNING token_balance");
  const insertCapture = db.prepare(
    "INSERT INTO token_transactions (id, user_id, amount, type, reason, brief_id, balance_after, idempotency_key, hold_id, created_at) VALUES (?, ?, ?, 'deduct', ?, NULL, ?, NULL, ?, ?)",
  );
  const hold = db.transaction((/** @type {string} */ userId, /** @type {number} */ amount) => {
    const now = Date.now();
    if (reserve.get(amount, now, userId, amount) === undefined) return undefined;
    const id = `hold_${randomUUID()}`;
    insertHold.run(id, userId, amount, "bench", now + 900_000, now);
    return id;
  });
  const capture = db.transaction((/** @type {string} */ holdId, /** @type {number} */ amount) => {
    const now = Date.now();
    const held = settle.get(amount, now, holdId, now, amount);
    if (held === undefined) return undefined;
    const row = charge.get(amount, held.amount, now, held.user_id);
    if (row === undefined) throw new Error(`no user ${held.user_id}`);
    insertCapture.run(randomUUID(), held.user_id, -amount, held.reason, row.token_balance, holdId, now);
    return row.token_balance;
  });
  const pairs = OPS / 2;
  const start = process.hrtime.bigint();
  for (let i = 0; i < pairs; i++) {
    const id = hold.immediate(`u${i % USERS}`, 10);
    if (id === undefined || capture.immediate(id, 7) === undefined) throw new Error("the raw hold + capture was refused");
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  db.close();
  return pairs / seconds;
}

/**
 * @param {string} path
 * @param {"FULL" | "NORMAL"} synchronous
 */
async function briefdbLoop(path, synchronous) {
  const db = await openDatabase(`file:${path}`);
  await db.exec(`PRAGMA synchronous = ${synchronous}`); // on briefdb's one SQLite connection
  const start = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) {
    const result = await atomicTokenOperation(db, `u${i % USERS}`, "deduct", 1, "bench");
    if (!result.success) throw result.error;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await db.close();
  return OPS / seconds;
}

/**
 * hold, then capture part of it (the AI-generation flow): pairs per second.
 * @param {string} path
 * @param {"FULL" | "NORMAL"} synchronous
 */
async function holdCaptureLoop(path, synchronous) {
  const db = await openDatabase(`file:${path}`);
  await db.exec(`PRAGMA synchronous = ${synchronous}`); // on briefdb's one SQLite connection
  const pairs = OPS / 2;
  const start = process.hrtime.bigint();
  for (let i = 0; i < pairs; i++) {
    const held = await holdTokens(db, `u${i % USERS}`, 10, "bench");
    if (!held.success) throw held.error;
    const captured = await captureHold(db, held.data.holdId, 7);
    if (!captured.success) throw captured.error;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await db.close();
  return pairs / seconds;
}

/** @returns {Promise<import("./report.mjs").BenchResult[]>} */
export async function run() {
  // /dev/shm when there is one: the figure is briefdb's overhead, not the disk's mood
  const dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "briefdb-bench-tokens-"));
  /** @type {import("./report.mjs").BenchResult[]} */
  const results = [];
  try {
    const rawPath = await prepareFile(dir, "raw.db");
    const libPath = await prepareFile(dir, "briefdb.db");
    for (const synchronous of /** @type {const} */ (["FULL", "NORMAL"])) {
      const raw = [];
      const rawPairs = [];
      const lib = [];
      const pairs = [];
      // alternate the sides so that a noisy neighbour hurts all alike; keep each side's best round
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 0) {
          raw.push(rawLoop(rawPath, synchronous));
          rawPairs.push(rawPairLoop(rawPath, synchronous));
        }
        lib.push(await briefdbLoop(libPath, synchronous));
        pairs.push(await holdCaptureLoop(libPath, synchronous));
        if (round % 2 === 1) {
          rawPairs.push(rawPairLoop(rawPath, synchronous));
          raw.push(rawLoop(rawPath, synchronous));
        }
      }
      const rawBest = Math.max(...raw);
      const rawPairBest = Math.max(...rawPairs);
      const libBest = Math.max(...lib);
      results.push({
        name: `deduct, SQLite in-process, synchronous=${synchronous}`,
        briefdb: `${Math.round(libBest)} ops/s`,
        baseline: `${Math.round(rawBest)} ops/s (raw better-sqlite3 prepared loop)`,
        ratio: libBest / rawBest,
        target: 0.8,
      });
      const pairBest = Math.max(...pairs);
      results.push({
        name: `hold + capture pair, SQLite in-process, synchronous=${synchronous}`,
        briefdb: `${Math.round(pairBest)} pairs/s`,
        baseline: `${Math.round(rawPairBest)} pairs/s (the same writes, hand-written on better-sqlite3)`,
        extra: [
          `beside it: a raw pair costs ${(rawBest / rawPairBest).toFixed(2)} raw deducts; briefdb's pair is ${(pairBest / libBest).toFixed(2)}× briefdb's own deduct rate`,
        ],
        ratio: pairBest / rawPairBest,
        target: 0.8,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printResults } = await import("./report.mjs");
  printResults(await run());
}
