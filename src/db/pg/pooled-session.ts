/**
 * A migration session through a transaction pooler, which lends a server connection for one
 * transaction at a time: a session advisory lock taken there could be left held on a server
 * connection nobody owns, and session settings would reach other clients. So the session is ONE
 * transaction holding the migration lock (transaction-scoped), each step under a savepoint (a
 * step that fails, such as a lock wait given up and retried, is undone alone), its settings SET
 * LOCAL. What cannot run inside a transaction — an index built, dropped or rebuilt CONCURRENTLY —
 * is refused before it is sent (SESSION_REQUIRED): the transaction rolls back and nothing the run
 * did is kept. Everything else (a fresh database, new tables and columns, constraints) commits at
 * the end, together.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Executor, Row } from "../database.js";
import type { MigrationSession } from "../schema-changes.js";
import { BriefdbError } from "../../errors.js";

const SAVEPOINT = "briefdb_step";

/** Runs `operation` on a session made of one transaction that `withMigrationLock` opens. */
export function inPooledTransaction<T>(
  withMigrationLock: (operation: (tx: Executor) => Promise<T>) => Promise<T>,
  operation: (session: MigrationSession) => Promise<T>,
): Promise<T> {
  return withMigrationLock(async (tx) => {
    // as on a session of its own: no statement timeout (a validation may take minutes, and a
    // role's default would cut it), a client gone noticed within a second, and the lock bound
    // left to each step
    await tx.exec("SET LOCAL statement_timeout = 0");
    await tx.exec("SET LOCAL client_connection_check_interval = '1s'");
    await tx.exec("SET LOCAL lock_timeout = 0");
    const [row] = await tx.all<{ pid: number }>(sql`SELECT pg_backend_pid() AS pid`);
    return operation(sessionIn(tx, Number(row?.pid)));
  });
}

function sessionIn(tx: Executor, pid: number): MigrationSession {
  const inTransaction: Executor = {
    all: <R extends Row>(query: SQL) => tx.all<R>(query),
    run: (query: SQL) => tx.run(query),
    exec: async (script: string) => {
      refuseOnline(script);
      await tx.exec(script);
    },
  };
  /** One step, undone alone when it fails. */
  const step = async <R>(work: () => Promise<R>): Promise<R> => {
    await tx.exec(`SAVEPOINT ${SAVEPOINT}`);
    try {
      const result = await work();
      await tx.exec(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      return result;
    } catch (error) {
      await tx.exec(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`).catch(() => {});
      throw error;
    }
  };
  return {
    pid,
    all: <R extends Row>(query: SQL) => step(() => inTransaction.all<R>(query)),
    run: (query: SQL) => step(() => inTransaction.run(query)),
    exec: (script: string) => step(() => inTransaction.exec(script)),
    transaction: (operation) => step(() => operation(inTransaction)),
    // inside the pooled transaction already: its locks are the whole run's anyway
    atomically: (statements) =>
      step(async () => {
        for (const statement of statements) await inTransaction.run(statement);
      }),
    setLockTimeout: (ms: number) => tx.exec(`SET LOCAL lock_timeout = ${Math.max(0, Math.floor(ms))}`),
  };
}

/** Refuses a statement that cannot run inside a transaction (CREATE / DROP INDEX CONCURRENTLY, REINDEX … CONCURRENTLY). */
function refuseOnline(script: string): void {
  if (!/\bCONCURRENTLY\b/i.test(script)) return;
  const name = /\bCONCURRENTLY\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?("(?:[^"]|"")+"|[\w$]+)/i.exec(script)?.[1];
  const index = name === undefined ? "an index" : /^"[a-z_][a-z0-9_$]*"$/.test(name) ? name.slice(1, -1) : name;
  const what = /^\s*DROP/i.test(script) ? "drop" : /^\s*REINDEX/i.test(script) ? "rebuild" : "build";
  throw new BriefdbError(
    "SESSION_REQUIRED",
    `migrate must ${what} index ${index} without blocking writes (CONCURRENTLY), which needs a session of its own, and this connection goes through a transaction pooler; nothing changed`,
    "point migrate at the database's own port rather than the pooler's, or run `briefdb migrate --offline`, which does it inside the migration's transaction while writes to the table wait",
  );
}
