/**
 * A big, consistent token ledger on PostgreSQL built fast, and an app that keeps using it: shared
 * by test/online-migrate.test.ts and bench/migrate-online.mjs.
 *
 * - buildLedger: every user's balance equals the sum of its ledger (`tokens verify` holds). Rows are
 *   written with one INSERT … SELECT generate_series, with the secondary indexes dropped first and
 *   rebuilt after (a sort per index instead of a million index insertions) and foreign-key triggers
 *   off for the load (the rows are valid by construction): seconds, not the seed path's minutes.
 * - appRole: a login role for the app, with a role-level lock_timeout (briefdb's own lockTimeoutMs,
 *   sent when the app opens its database, takes precedence over it).
 * - runTokenOperations: parallel connections crediting and deducting until told to stop; every
 *   failure and the longest operation are kept.
 * - forgetHoldsMigration / runLedgerWrites: the holds migration made pending again on a migrated
 *   ledger, and the app as it wrote before holds (plain SQL), for migrating 0002 while it runs.
 */
import postgres from "postgres";

/** @typedef {import("../src/index.js").BriefDatabase} BriefDatabase */
/** @typedef {typeof import("../src/index.js").atomicTokenOperation} AtomicTokenOperation */
/** @typedef {{ operations: number, failures: string[], longestMs: number }} AppSeen */

export const LEDGER_USERS = 1000;

/** The migration that adds holds, whose foreign key on the ledger validates every ledger row. */
export const HOLDS_TAG = "0002_holds";

/**
 * Builds `rows` ledger rows over LEDGER_USERS users on a migrated database.
 * @param {string} url @param {number} rows
 */
export async function buildLedger(url, rows) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const indexes = await sql`
      SELECT c.relname AS name, pg_get_indexdef(x.indexrelid) AS definition
      FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
      WHERE x.indrelid = 'token_transactions'::regclass AND NOT x.indisprimary`;
    await sql.begin(async (tx) => {
      await tx.unsafe("SET LOCAL session_replication_role = replica");
      await tx.unsafe("SET LOCAL maintenance_work_mem = '256MB'");
      for (const { name } of indexes) await tx.unsafe(`DROP INDEX "${name}"`);
      await tx.unsafe(`
        INSERT INTO users (id, email, name, token_balance)
        SELECT 'user-' || u, 'user-' || u || '@example.invalid', 'User ' || u, 0 FROM generate_series(1, ${LEDGER_USERS}) u`);
      await tx.unsafe(`
        INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at)
        SELECT 'tx-' || g, 'user-' || (1 + g % ${LEDGER_USERS}), 5, 'credit', 'load', 5 * (1 + g / ${LEDGER_USERS}),
               timestamptz '2025-01-01' + g * interval '1 second'
        FROM generate_series(0, ${rows - 1}) g`);
      await tx.unsafe(`
        UPDATE users u SET token_balance = l.total
        FROM (SELECT user_id, sum(amount) AS total FROM token_transactions GROUP BY user_id) l WHERE l.user_id = u.id`);
      for (const { definition } of indexes) await tx.unsafe(definition);
    });
    await sql.unsafe("ANALYZE users, token_transactions");
  } finally {
    await sql.end();
  }
}

/**
 * Makes the index migration pending again: its record and its finished steps forgotten.
 * @param {string} url @param {string} tag
 */
export async function forgetMigration(url, tag) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`DELETE FROM briefdb_migrations WHERE tag = ${tag}`;
    await sql.unsafe("CREATE TABLE IF NOT EXISTS briefdb_migration_steps (tag text NOT NULL, step integer NOT NULL, hash text NOT NULL, action text NOT NULL, finished_at bigint NOT NULL, PRIMARY KEY (tag, step))");
    await sql`DELETE FROM briefdb_migration_steps WHERE tag = ${tag}`;
  } finally {
    await sql.end();
  }
}

/**
 * Takes the holds migration (0002_holds) back off a migrated database, so that it is pending on a
 * ledger at 0001: its table, its two columns (and with them its index and foreign key) and its
 * records go.
 * @param {string} url
 */
export async function forgetHoldsMigration(url) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe("DROP TABLE IF EXISTS token_holds CASCADE");
    await sql.unsafe("ALTER TABLE token_transactions DROP COLUMN IF EXISTS hold_id");
    await sql.unsafe("ALTER TABLE users DROP COLUMN IF EXISTS held_tokens");
  } finally {
    await sql.end();
  }
  await forgetMigration(url, HOLDS_TAG);
}

/**
 * A role for the app, with its lock-wait budget; returns its URL and a function that drops it.
 * @param {string} url @param {string} name @param {string} lockTimeout
 * @returns {Promise<{ url: string, drop(): Promise<void> }>}
 */
export async function appRole(url, name, lockTimeout) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP ROLE IF EXISTS ${name}`);
    await sql.unsafe(`CREATE ROLE ${name} LOGIN PASSWORD 'app'`);
    await sql.unsafe(`ALTER ROLE ${name} SET lock_timeout = '${lockTimeout}'`);
    await sql.unsafe(`GRANT SELECT, INSERT, UPDATE ON users, token_transactions TO ${name}`);
  } finally {
    await sql.end();
  }
  const appUrl = new URL(url);
  appUrl.username = name;
  appUrl.password = "app";
  return {
    url: appUrl.toString(),
    async drop() {
      const admin = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`DROP OWNED BY ${name}`);
        await admin.unsafe(`DROP ROLE IF EXISTS ${name}`);
      } finally {
        await admin.end();
      }
    },
  };
}

/**
 * Runs token operations from `connections` parallel connections (library calls, one pool) until
 * `stop()`; resolves when they have all ended. `started` resolves once every connection has
 * completed an operation, so that what follows runs while the app is busy.
 * @param {BriefDatabase} db @param {AtomicTokenOperation} atomicTokenOperation @param {number} connections
 * @returns {{ started: Promise<void>, stop(): Promise<AppSeen> }}
 */
export function runTokenOperations(db, atomicTokenOperation, connections) {
  return runWriters(connections, async (_worker, i, user) => {
    const result = await atomicTokenOperation(db, user, i % 2 === 0 ? "deduct" : "credit", 1, "during migrate");
    return result.success ? undefined : `${result.error.code}: ${result.error.message}`;
  });
}

/**
 * `connections` loops calling `write(worker, i, user)` (a failure as a line, or undefined) until
 * `stop()`, each on a user of its own sequence; counts the operations and the longest one.
 * @param {number} connections
 * @param {(worker: number, i: number, user: string) => Promise<string | undefined>} write
 * @param {() => Promise<void>} [end] run once the loops have stopped
 * @returns {{ started: Promise<void>, stop(): Promise<AppSeen> }}
 */
function runWriters(connections, write, end = async () => {}) {
  let stopping = false;
  /** @type {string[]} */
  const failures = [];
  let operations = 0;
  let longestMs = 0;
  let ready = 0;
  /** @type {() => void} */
  let markStarted = () => {};
  /** @type {Promise<void>} */
  const started = new Promise((resolve) => (markStarted = resolve));
  /** @param {number} worker */
  const loop = async (worker) => {
    for (let i = 0; !stopping; i++) {
      const user = `user-${1 + ((worker * 7919 + i * 104729) % LEDGER_USERS)}`;
      const start = performance.now();
      const failure = await write(worker, i, user);
      if (failure !== undefined) failures.push(failure);
      longestMs = Math.max(longestMs, performance.now() - start);
      operations += 1;
      if (i === 0 && ++ready === connections) markStarted();
    }
  };
  const done = Promise.all(Array.from({ length: connections }, (_, worker) => loop(worker)));
  return {
    started,
    async stop() {
      stopping = true;
      await done;
      await end();
      return { operations, failures, longestMs };
    },
  };
}

/**
 * The app as deployed before a migration: credits and deducts written in plain SQL against the
 * columns every migration keeps (the library's own statements read columns a pending migration
 * adds), from `connections` parallel connections until `stop()`. One statement per operation, as
 * the library's: the balance update and its ledger row. A lock wait past the role's lock_timeout
 * fails the operation, recorded as `LOCK_TIMEOUT: …`.
 * @param {string} url @param {number} connections
 * @returns {{ started: Promise<void>, stop(): Promise<AppSeen> }}
 */
export function runLedgerWrites(url, connections) {
  const sql = postgres(url, { max: connections, onnotice: () => {} });
  return runWriters(
    connections,
    async (worker, i, user) => {
      const delta = i % 2 === 0 ? -1 : 1;
      try {
        await writeAsAppBeforeHolds(sql, user, delta, `app-${worker}-${i}-${Date.now()}`);
        return undefined;
      } catch (error) {
        const code = /** @type {{ code?: string }} */ (error).code;
        return `${code === "55P03" ? "LOCK_TIMEOUT" : code}: ${error instanceof Error ? error.message : String(error)}`;
      }
    },
    () => sql.end(),
  );
}

/**
 * One credit (delta > 0) or deduct (delta < 0) of the app deployed before holds: one statement,
 * the balance update and its ledger row, stamped by the column's default (no created_at given).
 * @param {postgres.Sql} sql @param {string} user @param {number} delta @param {string} id
 */
export function writeAsAppBeforeHolds(sql, user, delta, id) {
  return sql`
    WITH u AS (
      UPDATE users SET token_balance = token_balance + ${delta} WHERE id = ${user} AND token_balance + ${delta} >= 0
      RETURNING token_balance)
    INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after)
    SELECT ${id}, ${user}, ${delta}, ${delta < 0 ? "deduct" : "credit"}, 'during migrate', token_balance FROM u`;
}
